//! What we ask the models: the battle and summon prompts (texts in the `.txt` files beside
//! this one), the output schemas, and the character cards a summon produces.
//!
//! Everything players wrote (names, skills, wishes) is data: cut to a length, quoted as a JSON
//! string (with `<` and `>` escaped so it cannot forge a delimiter line) and placed inside a
//! delimited block that the system instruction tells the model never to obey.

mod character;
pub(crate) mod schema;
mod templates;

pub use character::CharacterText;
pub use templates::summon_from_templates;

use hero_protocol::{BattleRequest, Fighter};

use crate::EngineError;

const BATTLE_SYSTEM: &str = include_str!("battle_system.txt");
const BATTLE_USER: &str = include_str!("battle_user.txt");
const BATTLE_TEXT_USER: &str = include_str!("battle_text_user.txt");
const FIGHTER: &str = include_str!("fighter.txt");
const SUMMON_SYSTEM: &str = include_str!("summon_system.txt");
const SUMMON_USER: &str = include_str!("summon_user.txt");

/// Longest piece of player text (a wish, a name, a skill) put into a prompt, in characters.
pub const MAX_DATA_CHARS: usize = 500;
/// Longest seed-style battle text (a request without fighters) put into a prompt.
pub const MAX_BATTLE_TEXT_CHARS: usize = 2000;
/// Longest fighter id put into a prompt; real ids are UUIDs.
const MAX_ID_CHARS: usize = 128;

/// A system instruction (the output contract) and a user message (the data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

/// The prompt for one battle: fighter records when the request has them, otherwise the
/// request's own `prompt` text as the data block.
/// The one-line `prompt` of a [`BattleRequest`], for seed-style nodes that read nothing else.
pub fn request_prompt(fighters: &[Fighter]) -> String {
    let describe = |f: &Fighter| {
        format!(
            "{} (id {}, {}★, strength {}, agility {}, luck {})",
            f.name, f.id, f.rarity, f.strength, f.agility, f.luck
        )
    };
    let names: Vec<String> = fighters.iter().map(describe).collect();
    format!(
        "A battle between {}. The winner must be one of these ids.",
        names.join(" and ")
    )
}

pub fn battle_prompt(request: &BattleRequest) -> Result<Prompt, EngineError> {
    let battle_id = quote(&request.battle_id, MAX_ID_CHARS);
    let user = match request.fighters.as_deref() {
        Some(fighters) => {
            let [a, b] = fighters else {
                return Err(EngineError::InvalidRequest(format!(
                    "a battle needs exactly two fighters, got {}",
                    fighters.len()
                )));
            };
            if a.id.trim().is_empty() || b.id.trim().is_empty() || a.id == b.id {
                return Err(EngineError::InvalidRequest(
                    "the two fighters need distinct, non-empty ids".to_owned(),
                ));
            }
            render(
                BATTLE_USER,
                &[
                    ("BATTLE_ID", &battle_id),
                    ("FIGHTER_1", &fighter_record(1, a)),
                    ("FIGHTER_2", &fighter_record(2, b)),
                ],
            )
        }
        None if request.prompt.trim().is_empty() => {
            return Err(EngineError::InvalidRequest(
                "a battle needs fighters or a prompt".to_owned(),
            ));
        }
        None => render(
            BATTLE_TEXT_USER,
            &[
                ("BATTLE_ID", &battle_id),
                (
                    "BATTLE_TEXT",
                    &quote(&request.prompt, MAX_BATTLE_TEXT_CHARS),
                ),
            ],
        ),
    };
    Ok(Prompt {
        system: BATTLE_SYSTEM.trim_end().to_owned(),
        user,
    })
}

/// The prompt that turns a player's wish into a [`CharacterText`].
pub fn summon_prompt(player_text: &str, rarity: u32) -> Prompt {
    let rarity = rarity.clamp(1, 5).to_string();
    Prompt {
        system: SUMMON_SYSTEM.trim_end().to_owned(),
        user: render(
            SUMMON_USER,
            &[
                ("RARITY", &rarity),
                ("PLAYER_TEXT", &quote(player_text, MAX_DATA_CHARS)),
            ],
        ),
    }
}

/// The fighter's hit points at the start of a battle; the same rule as the Sim engine:
/// `100 + 5×strength + 2×agility + 2×luck`, plus 5% per rarity star above the first.
pub fn starting_hp(fighter: &Fighter) -> u64 {
    let base = 100
        + 5 * u64::from(fighter.strength)
        + 2 * u64::from(fighter.agility)
        + 2 * u64::from(fighter.luck);
    base * (100 + 5 * u64::from(fighter.rarity.saturating_sub(1))) / 100
}

/// The seed sent upstream: the request's seed, or one derived from the battle id so every
/// node asks the same question; 31 bits, which every server accepts.
pub(crate) fn wire_seed(request: &BattleRequest) -> u32 {
    let seed = request.seed.unwrap_or_else(|| fnv1a(&request.battle_id));
    u32::try_from(seed & 0x7fff_ffff).unwrap_or(0)
}

/// 64-bit FNV-1a: a stable hash for deriving seeds from text.
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn fighter_record(slot: u32, f: &Fighter) -> String {
    render(
        FIGHTER,
        &[
            ("SLOT", &slot.to_string()),
            ("ID", &quote(&f.id, MAX_ID_CHARS)),
            ("NAME", &quote(&f.name, MAX_DATA_CHARS)),
            ("STRENGTH", &f.strength.to_string()),
            ("AGILITY", &f.agility.to_string()),
            ("LUCK", &f.luck.to_string()),
            ("RARITY", &f.rarity.clamp(1, 5).to_string()),
            ("STARTING_HP", &starting_hp(f).to_string()),
            ("SKILL", &quote(&f.skill_description, MAX_DATA_CHARS)),
        ],
    )
}

/// Untrusted text as a one-line JSON string of at most `max_chars` characters, with `<` and
/// `>` escaped so it can never spell a delimiter line.
pub(crate) fn quote(text: &str, max_chars: usize) -> String {
    let cut: String = text.chars().take(max_chars).collect();
    serde_json::Value::String(cut)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
}

/// Fills `{{KEY}}` markers in one pass, so values are never scanned for markers themselves.
fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            rest = &rest[start..];
            break;
        };
        let key = &after[..end];
        match vars.iter().find(|(name, _)| *name == key) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests;
