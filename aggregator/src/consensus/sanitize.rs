//! What nodes send is hostile input: text is stripped of control characters (NUL included,
//! which PostgreSQL text cannot hold) and bounded before anything is stored or published.

use hero_protocol::{BattleResult, Fighter};

/// Longest error text kept from a node.
pub const MAX_ERROR_CHARS: usize = 512;
/// What is stored instead of a rejected winner that is not one of the fighters.
pub const NOT_A_FIGHTER: &str = "(not a fighter)";

/// `text` without control characters, at most `max_chars` characters (an ellipsis marks a cut).
pub fn clean_text(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars + 1)
        .collect();
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

/// Narrative text: control characters removed except line breaks and tabs.
fn clean_narrative(text: &mut String) {
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        text.retain(|c| !c.is_control() || c == '\n' || c == '\t');
    }
}

/// Strips control characters from every free-text field of a result (sizes are bounded by
/// validation, and by the 1 MiB read limit before it).
pub fn clean_result(result: &mut BattleResult) {
    clean_narrative(&mut result.battle_description);
    for entry in &mut result.battle_log {
        clean_narrative(&mut entry.text);
        clean_narrative(&mut entry.action);
    }
}

/// A winner as it may be stored: a fighter's id, or a marker.
pub fn stored_winner(winner: &str, fighters: &[Fighter]) -> String {
    if fighters.iter().any(|f| f.id == winner) {
        winner.to_string()
    } else {
        NOT_A_FIGHTER.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_control_characters_never_survive() {
        assert_eq!(clean_text("a\u{0}b\u{1b}[31mc\n", 512), "ab[31mc");
        let long = "x".repeat(1 << 20);
        let cut = clean_text(&long, MAX_ERROR_CHARS);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS);
        assert!(cut.ends_with('…'));
        let mut r = BattleResult {
            winner: "c1".into(),
            battle_log: vec![hero_protocol::BattleLogEntry {
                text: "hit\u{0}\nagain".into(),
                action: "sla\u{7}sh".into(),
                ..Default::default()
            }],
            battle_description: "the\u{0} end\tfin".into(),
        };
        clean_result(&mut r);
        assert_eq!(r.battle_log[0].text, "hit\nagain");
        assert_eq!(r.battle_log[0].action, "slash");
        assert_eq!(r.battle_description, "the end\tfin");
    }

    #[test]
    fn winners_are_fighters_or_a_marker() {
        let fighter = |id: &str| Fighter {
            id: id.into(),
            name: id.into(),
            strength: 1,
            agility: 1,
            luck: 1,
            rarity: 1,
            skill_description: String::new(),
        };
        let fighters = vec![fighter("c1"), fighter("c2")];
        assert_eq!(stored_winner("c2", &fighters), "c2");
        assert_eq!(stored_winner("c\u{0}3", &fighters), NOT_A_FIGHTER);
    }
}
