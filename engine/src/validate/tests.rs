//! Unit tests for each validation rule, starting from a valid result and breaking one thing.

use hero_protocol::{BattleLogEntry, BattleResult, MAX_LOG_ENTRIES};
use hero_testkit::fixtures::{plain, plain_pair};

use super::*;

fn hit(round: u32, actor: &str, target: &str, target_hp: u32) -> BattleLogEntry {
    BattleLogEntry {
        round,
        actor: actor.to_owned(),
        target: target.to_owned(),
        action: "attack".to_owned(),
        damage: 10,
        target_hp,
        text: format!("{actor} hits {target}"),
    }
}

/// `a` knocks `b` out in round 2.
fn knockout() -> BattleResult {
    BattleResult {
        winner: "a".to_owned(),
        battle_log: vec![
            hit(1, "a", "b", 20),
            hit(1, "b", "a", 30),
            hit(2, "a", "b", 0),
        ],
        battle_description: "A knocks out B in round 2.".to_owned(),
    }
}

fn check(result: &BattleResult) -> Result<(), ValidationError> {
    validate(&plain_pair(), result)
}

#[test]
fn a_consistent_knockout_passes() {
    assert_eq!(check(&knockout()), Ok(()));
}

#[test]
fn fighters_must_be_two_distinct() {
    let one = vec![plain("a")];
    assert_eq!(
        validate(&one, &knockout()),
        Err(ValidationError::FighterCount(1))
    );
    let three = vec![plain("a"), plain("b"), plain("c")];
    assert_eq!(
        validate(&three, &knockout()),
        Err(ValidationError::FighterCount(3))
    );
    let twins = vec![plain("a"), plain("a")];
    assert!(matches!(
        validate(&twins, &knockout()),
        Err(ValidationError::DuplicateFighter(_))
    ));
}

#[test]
fn a_winner_that_is_not_a_fighter_is_refused() {
    let mut result = knockout();
    result.winner = "c".to_owned();
    assert_eq!(
        check(&result),
        Err(ValidationError::UnknownWinner("c".to_owned()))
    );
}

#[test]
fn a_hostile_winner_is_quoted_short() {
    let mut result = knockout();
    result.winner = "x".repeat(100_000);
    let Err(ValidationError::UnknownWinner(quoted)) = check(&result) else {
        panic!("expected UnknownWinner");
    };
    assert_eq!(quoted.len(), QUOTE_CHARS);
}

#[test]
fn an_empty_log_is_refused() {
    let mut result = knockout();
    result.battle_log.clear();
    assert_eq!(check(&result), Err(ValidationError::EmptyLog));
}

#[test]
fn an_oversize_log_is_refused() {
    let mut result = knockout();
    result.battle_log = (0..=MAX_LOG_ENTRIES).map(|_| hit(1, "a", "b", 5)).collect();
    assert_eq!(
        check(&result),
        Err(ValidationError::LogTooLong(MAX_LOG_ENTRIES + 1))
    );
    result.battle_log.pop();
    assert_eq!(check(&result), Ok(()), "exactly the maximum is fine");
}

#[test]
fn a_third_fighter_in_the_log_is_refused() {
    let mut result = knockout();
    result.battle_log[1].actor = "c".to_owned();
    assert!(matches!(
        check(&result),
        Err(ValidationError::UnknownFighter { index: 1, .. })
    ));
    let mut result = knockout();
    result.battle_log[0].target = "c".to_owned();
    assert!(matches!(
        check(&result),
        Err(ValidationError::UnknownFighter { index: 0, .. })
    ));
}

#[test]
fn a_fighter_acting_on_themself_is_refused() {
    let mut result = knockout();
    result.battle_log[1].target = "b".to_owned();
    assert_eq!(
        check(&result),
        Err(ValidationError::SelfTarget { index: 1 })
    );
}

#[test]
fn rounds_start_at_one_and_never_decrease() {
    let mut result = knockout();
    result.battle_log[0].round = 0;
    assert_eq!(check(&result), Err(ValidationError::RoundZero { index: 0 }));
    let mut result = knockout();
    result.battle_log[1].round = 3;
    assert_eq!(
        check(&result),
        Err(ValidationError::RoundDecreased {
            index: 2,
            round: 2,
            previous: 3
        })
    );
}

#[test]
fn actions_are_non_empty_and_short() {
    let mut result = knockout();
    result.battle_log[0].action = "  ".to_owned();
    assert_eq!(check(&result), Err(ValidationError::BadAction { index: 0 }));
    result.battle_log[0].action = "a".repeat(MAX_ACTION_CHARS + 1);
    assert_eq!(check(&result), Err(ValidationError::BadAction { index: 0 }));
}

#[test]
fn oversize_text_is_refused_counting_characters() {
    let mut result = knockout();
    result.battle_log[2].text = "é".repeat(MAX_TEXT_CHARS);
    assert_eq!(
        check(&result),
        Ok(()),
        "{MAX_TEXT_CHARS} two-byte characters are fine"
    );
    result.battle_log[2].text.push('!');
    assert_eq!(
        check(&result),
        Err(ValidationError::TextTooLong { index: 2 })
    );
}

#[test]
fn the_description_is_non_empty_and_bounded() {
    let mut result = knockout();
    result.battle_description = " ".to_owned();
    assert_eq!(check(&result), Err(ValidationError::EmptyDescription));
    result.battle_description = "d".repeat(MAX_DESCRIPTION_CHARS + 1);
    assert_eq!(check(&result), Err(ValidationError::DescriptionTooLong));
}

#[test]
fn entries_after_a_knockout_are_refused() {
    let mut result = knockout();
    result.battle_log.push(hit(2, "b", "a", 10));
    assert_eq!(
        check(&result),
        Err(ValidationError::EntriesAfterKnockout { index: 2 })
    );
}

#[test]
fn a_winner_at_zero_hp_is_refused() {
    let mut result = knockout();
    result.winner = "b".to_owned();
    assert_eq!(
        check(&result),
        Err(ValidationError::WinnerKnockedOut("b".to_owned()))
    );
}

#[test]
fn going_the_distance_the_winner_must_not_be_behind() {
    let mut result = knockout();
    result.battle_log[2].target_hp = 5;
    assert_eq!(check(&result), Ok(()), "a has 30 left, b has 5");
    result.winner = "b".to_owned();
    assert_eq!(
        check(&result),
        Err(ValidationError::WinnerBehind {
            winner_hp: Some(5),
            loser_hp: Some(30)
        })
    );
    result.battle_log[2].target_hp = 30;
    assert_eq!(check(&result), Ok(()), "a tie may go either way");
}

#[test]
fn an_untargeted_fighter_counts_as_full_hp() {
    let mut result = knockout();
    result.battle_log = vec![hit(1, "a", "b", 90)];
    assert_eq!(check(&result), Ok(()), "untouched a beats b");
    result.winner = "b".to_owned();
    let err = check(&result);
    assert_eq!(
        err,
        Err(ValidationError::WinnerBehind {
            winner_hp: Some(90),
            loser_hp: None
        })
    );
    let message = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        message,
        "the winner has 90 hp left, less than the loser's full"
    );
}
