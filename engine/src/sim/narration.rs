//! The Sim engine's words: one readable English line per action and the battle summary.

use std::fmt::Write as _;

use hero_protocol::{BattleLogEntry, Fighter};

use super::combat::{Action, Bout, Combatant, Finish};

/// Longest fighter name quoted in a line; longer names are shortened.
const NAME_CHARS: usize = 40;
/// Longest piece of a skill description quoted in a line.
const SKILL_CHARS: usize = 60;

const STRIKES: [&str; 4] = ["strikes", "slashes at", "hammers", "lunges at"];

/// A fighter's name and skill as the log lines quote them.
pub(crate) struct Quoted {
    name: String,
    skill: String,
}

impl Quoted {
    pub(crate) fn of(fighter: &Fighter) -> Self {
        Self {
            name: display(&fighter.name, NAME_CHARS),
            skill: display(&fighter.skill_description, SKILL_CHARS),
        }
    }
}

/// The log entry for one action; `target.hp` is already the hp after it.
pub(crate) fn entry(
    round: u32,
    actor: &Combatant<'_>,
    target: &Combatant<'_>,
    action: Action,
    damage: u32,
) -> BattleLogEntry {
    let (a, t) = (&actor.quoted.name, &target.quoted.name);
    let mut text = String::with_capacity(2 * a.len() + 2 * t.len() + 64);
    // Writing to a String cannot fail.
    let _ = match action {
        Action::Dodge => write!(text, "{t} dodges {a}'s attack."),
        Action::Attack => {
            let verb = STRIKES[usize::try_from(damage).unwrap_or(0) % STRIKES.len()];
            write!(text, "{a} {verb} {t} for {damage} damage. ")
        }
        Action::Critical => {
            write!(
                text,
                "{a} lands a critical hit on {t} for {damage} damage! "
            )
        }
        Action::Skill => match actor.quoted.skill.as_str() {
            "" => write!(
                text,
                "{a} unleashes a signature move on {t} for {damage} damage! "
            ),
            skill => write!(
                text,
                "{a} unleashes \"{skill}\" on {t} for {damage} damage! "
            ),
        },
    };
    if action != Action::Dodge {
        let _ = if target.hp == 0 {
            write!(text, "{t} falls!")
        } else {
            write!(text, "{t} has {} hp left.", target.hp)
        };
    }
    BattleLogEntry {
        round,
        actor: actor.fighter.id.clone(),
        target: target.fighter.id.clone(),
        action: action.keyword().to_owned(),
        damage,
        target_hp: target.hp,
        text,
    }
}

/// The battle summary: who won, in how many rounds, and how.
pub(crate) fn description(fighters: [&Fighter; 2], bout: &Bout, max_rounds: u32) -> String {
    let winner = display(&fighters[bout.winner].name, NAME_CHARS);
    let loser = display(&fighters[bout.loser].name, NAME_CHARS);
    match bout.finish {
        Finish::Knockout { round, action } => {
            let how = match action {
                Action::Skill => "with a signature skill",
                Action::Critical => "with a critical hit",
                Action::Attack | Action::Dodge => "with a final blow",
            };
            format!("{winner} knocks out {loser} {how} in round {round}.")
        }
        Finish::Decision => format!(
            "Neither fighter fell in {max_rounds} rounds; {winner} wins on points with {} hp \
             left to {loser}'s {}.",
            bout.hp[bout.winner], bout.hp[bout.loser]
        ),
    }
}

/// `text` on one line, at most `max` characters, marked with an ellipsis when shortened.
fn display(text: &str, max: usize) -> String {
    let clean = text.trim();
    let mut out: String = clean
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::display;

    #[test]
    fn display_shortens_and_flattens() {
        assert_eq!(display("  Ayla  ", 10), "Ayla");
        assert_eq!(display("abcdef", 3), "abc…");
        assert_eq!(display("a\nb", 10), "a b");
    }
}
