//! Turning an honest but sloppy model narrative into a valid vote, deterministically, so that
//! identical model outputs give identical votes: every `target_hp` is recomputed from the
//! damages (from each fighter's starting hp), rounds are made to start at 1 and never go back,
//! the log stops at the knockout, and the winner is
//! the fighter left standing (or, without a knockout, the one ahead on hp; the model's own pick
//! when they are level). An empty description gets a plain one. Nothing else is invented: a
//! log naming someone who is not a fighter, or with no entries at all, stays invalid.

use hero_protocol::{BattleLogEntry, BattleResult, Fighter};
use serde::Deserialize;

use crate::prompt::starting_hp;

/// A battle as a model may write it: any field may be missing.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawBattle {
    #[serde(default)]
    winner: Option<String>,
    #[serde(default)]
    battle_log: Vec<BattleLogEntry>,
    #[serde(default)]
    battle_description: String,
}

/// The repaired battle, and whether anything had to change.
pub(crate) fn repair(fighters: &[Fighter], raw: RawBattle) -> (BattleResult, bool) {
    let RawBattle {
        winner,
        mut battle_log,
        mut battle_description,
    } = raw;
    let [a, b] = fighters else {
        let result = BattleResult {
            winner: winner.unwrap_or_default(),
            battle_log,
            battle_description,
        };
        return (result, false);
    };
    let ids = [a.id.as_str(), b.id.as_str()];
    let slot = |id: &str| ids.iter().position(|known| *known == id);
    let mut changed = false;
    let mut hp = [starting_hp(a), starting_hp(b)];
    let mut knocked_out = None;
    let mut round = 1;
    for (index, entry) in battle_log.iter_mut().enumerate() {
        round = entry.round.max(round);
        if entry.round != round {
            entry.round = round;
            changed = true;
        }
        let (Some(actor), Some(target)) = (slot(&entry.actor), slot(&entry.target)) else {
            continue;
        };
        if actor == target {
            continue;
        }
        hp[target] = hp[target].saturating_sub(u64::from(entry.damage));
        let target_hp = u32::try_from(hp[target]).unwrap_or(u32::MAX);
        if entry.target_hp != target_hp {
            entry.target_hp = target_hp;
            changed = true;
        }
        if target_hp == 0 {
            knocked_out = Some((index, target));
            break;
        }
    }
    if let Some((index, _)) = knocked_out
        && battle_log.len() > index + 1
    {
        battle_log.truncate(index + 1);
        changed = true;
    }
    let claimed = winner.as_deref().and_then(slot);
    let decided = match knocked_out {
        Some((_, loser)) => 1 - loser,
        None if hp[0] == hp[1] => claimed.unwrap_or(0),
        None => usize::from(hp[1] > hp[0]),
    };
    if claimed != Some(decided) {
        changed = true;
    }
    if battle_description.trim().is_empty() {
        let loser = 1 - decided;
        battle_description = format!(
            "{} defeats {}.",
            fighters[decided].name, fighters[loser].name
        );
        changed = true;
    }
    let result = BattleResult {
        winner: ids[decided].to_owned(),
        battle_log,
        battle_description,
    };
    (result, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate;

    fn fighter(id: &str, strength: u32) -> Fighter {
        Fighter {
            id: id.into(),
            name: id.to_uppercase(),
            strength,
            agility: 10,
            luck: 10,
            rarity: 1,
            skill_description: String::new(),
        }
    }

    fn hit(round: u32, actor: &str, target: &str, damage: u32, target_hp: u32) -> BattleLogEntry {
        BattleLogEntry {
            round,
            actor: actor.into(),
            target: target.into(),
            action: "attack".into(),
            damage,
            target_hp,
            text: "a blow".into(),
        }
    }

    #[test]
    fn a_valid_battle_is_left_as_it_is() {
        let fighters = [fighter("a", 10), fighter("b", 10)];
        let hp = u32::try_from(starting_hp(&fighters[1])).unwrap();
        let raw = RawBattle {
            winner: Some("a".into()),
            battle_log: vec![hit(1, "a", "b", 30, hp - 30)],
            battle_description: "A wins.".into(),
        };
        let (result, changed) = repair(&fighters, raw);
        assert!(!changed);
        assert!(validate(&fighters, &result).is_ok());
    }

    #[test]
    fn wrong_hp_missing_winner_and_a_log_past_the_knockout_are_repaired() {
        let fighters = [fighter("a", 10), fighter("b", 10)];
        let raw = RawBattle {
            winner: None,
            battle_log: vec![
                hit(0, "a", "b", 50, 999),
                hit(1, "b", "a", 10, 7),
                hit(0, "a", "b", 500, 3),
                hit(3, "b", "a", 10, 0),
            ],
            battle_description: String::new(),
        };
        let (result, changed) = repair(&fighters, raw);
        assert!(changed);
        assert_eq!(result.winner, "a");
        assert_eq!(result.battle_log.len(), 3, "stops at the knockout");
        assert_eq!(result.battle_log[2].target_hp, 0);
        let rounds: Vec<u32> = result.battle_log.iter().map(|e| e.round).collect();
        assert_eq!(rounds, [1, 1, 1], "rounds start at 1 and never go back");
        assert_eq!(result.battle_description, "A defeats B.");
        assert!(validate(&fighters, &result).is_ok(), "{result:?}");
    }

    #[test]
    fn without_a_knockout_the_one_ahead_wins() {
        let fighters = [fighter("a", 10), fighter("b", 10)];
        let raw = RawBattle {
            winner: Some("a".into()),
            battle_log: vec![hit(1, "b", "a", 40, 1), hit(1, "a", "b", 10, 1)],
            battle_description: "A wins.".into(),
        };
        let (result, changed) = repair(&fighters, raw);
        assert!(changed);
        assert_eq!(result.winner, "b");
        assert!(validate(&fighters, &result).is_ok());
    }

    #[test]
    fn identical_outputs_give_identical_votes_and_strangers_stay_invalid() {
        let fighters = [fighter("a", 10), fighter("b", 30)];
        let make = || RawBattle {
            winner: Some("nobody".into()),
            battle_log: vec![hit(1, "a", "b", 5, 0), hit(2, "b", "a", 5, 0)],
            battle_description: "x".into(),
        };
        assert_eq!(repair(&fighters, make()), repair(&fighters, make()));
        let stranger = RawBattle {
            winner: Some("a".into()),
            battle_log: vec![hit(1, "zed", "b", 5, 0)],
            battle_description: "x".into(),
        };
        let (result, _) = repair(&fighters, stranger);
        assert!(validate(&fighters, &result).is_err());
    }
}
