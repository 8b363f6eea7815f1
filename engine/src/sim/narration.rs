//! The Sim engine's words: one readable English line per action and the battle summary.

use hero_protocol::{BattleLogEntry, Fighter};

use super::combat::{Action, Bout, Combatant, Finish};

/// Longest fighter name quoted in a line; longer names are shortened.
const NAME_CHARS: usize = 40;
/// Longest piece of a skill description quoted in a line.
const SKILL_CHARS: usize = 60;

const STRIKES: [&str; 4] = ["strikes", "slashes at", "hammers", "lunges at"];

/// The log entry for one action; `target.hp` is already the hp after it.
pub(crate) fn entry(
    round: u32,
    actor: &Combatant<'_>,
    target: &Combatant<'_>,
    action: Action,
    damage: u32,
) -> BattleLogEntry {
    let a = display(&actor.fighter.name, NAME_CHARS);
    let t = display(&target.fighter.name, NAME_CHARS);
    let outcome = if target.hp == 0 {
        format!("{t} falls!")
    } else {
        format!("{t} has {} hp left.", target.hp)
    };
    let text = match action {
        Action::Dodge => format!("{t} dodges {a}'s attack."),
        Action::Attack => {
            let verb = STRIKES[usize::try_from(damage).unwrap_or(0) % STRIKES.len()];
            format!("{a} {verb} {t} for {damage} damage. {outcome}")
        }
        Action::Critical => {
            format!("{a} lands a critical hit on {t} for {damage} damage! {outcome}")
        }
        Action::Skill => {
            let skill = display(&actor.fighter.skill_description, SKILL_CHARS);
            if skill.is_empty() {
                format!("{a} unleashes a signature move on {t} for {damage} damage! {outcome}")
            } else {
                format!("{a} unleashes \"{skill}\" on {t} for {damage} damage! {outcome}")
            }
        }
    };
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
