//! Result validation: whether a battle result, from any engine or any node, is a well-formed
//! battle between the given fighters whose log agrees with its winner.
//!
//! The aggregator runs this on every vote, so it refuses hostile input without panicking and
//! in time linear in the size of the (already parsed) result.

use hero_protocol::{BattleResult, Fighter, MAX_LOG_ENTRIES};

#[cfg(test)]
mod tests;

/// Longest accepted log line, in characters.
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest accepted battle description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest accepted action keyword, in characters.
const MAX_ACTION_CHARS: usize = 32;
/// How much of a hostile string an error message quotes.
const QUOTE_CHARS: usize = 64;

/// Why a battle result is refused. Messages quote at most a short piece of untrusted text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("a battle needs exactly two fighters, got {0}")]
    FighterCount(usize),
    #[error("both fighters have the id {0:?}")]
    DuplicateFighter(String),
    #[error("the winner {0:?} is not one of the fighters")]
    UnknownWinner(String),
    #[error("the battle log is empty")]
    EmptyLog,
    #[error("the battle log has {0} entries, more than the {MAX_LOG_ENTRIES} allowed")]
    LogTooLong(usize),
    #[error("log entry {index} names {id:?}, who is not one of the fighters")]
    UnknownFighter { index: usize, id: String },
    #[error("log entry {index} has a fighter acting on themself")]
    SelfTarget { index: usize },
    #[error("log entry {index} is in round 0; rounds start at 1")]
    RoundZero { index: usize },
    #[error("log entry {index} is in round {round}, after round {previous}")]
    RoundDecreased {
        index: usize,
        round: u32,
        previous: u32,
    },
    #[error(
        "log entry {index} has an empty action or one longer than {MAX_ACTION_CHARS} characters"
    )]
    BadAction { index: usize },
    #[error("log entry {index} has a text longer than {MAX_TEXT_CHARS} characters")]
    TextTooLong { index: usize },
    #[error("the battle description is empty")]
    EmptyDescription,
    #[error("the battle description is longer than {MAX_DESCRIPTION_CHARS} characters")]
    DescriptionTooLong,
    #[error("log entry {index} knocks a fighter out, but the log goes on")]
    EntriesAfterKnockout { index: usize },
    #[error("the winner {0:?} is knocked out in the log")]
    WinnerKnockedOut(String),
    #[error(
        "the winner has {} hp left, less than the loser's {}",
        hp(.winner_hp),
        hp(.loser_hp)
    )]
    WinnerBehind {
        winner_hp: Option<u32>,
        loser_hp: Option<u32>,
    },
}

/// Checks `result` against the two `fighters` of its battle; see [`ValidationError`] for
/// every rule.
pub fn validate(fighters: &[Fighter], result: &BattleResult) -> Result<(), ValidationError> {
    let [a, b] = fighters else {
        return Err(ValidationError::FighterCount(fighters.len()));
    };
    if a.id == b.id {
        return Err(ValidationError::DuplicateFighter(quote(&a.id)));
    }
    let ids = [a.id.as_str(), b.id.as_str()];
    let slot = |id: &str| ids.iter().position(|known| *known == id);
    let Some(winner) = slot(&result.winner) else {
        return Err(ValidationError::UnknownWinner(quote(&result.winner)));
    };
    let log = &result.battle_log;
    if log.is_empty() {
        return Err(ValidationError::EmptyLog);
    }
    if log.len() > MAX_LOG_ENTRIES {
        return Err(ValidationError::LogTooLong(log.len()));
    }
    check_description(&result.battle_description)?;

    // Each fighter's hp after the last entry that targeted it; None = never targeted.
    let mut hp: [Option<u32>; 2] = [None, None];
    let mut previous_round = 0;
    for (index, entry) in log.iter().enumerate() {
        let Some(actor) = slot(&entry.actor) else {
            return Err(ValidationError::UnknownFighter {
                index,
                id: quote(&entry.actor),
            });
        };
        let Some(target) = slot(&entry.target) else {
            return Err(ValidationError::UnknownFighter {
                index,
                id: quote(&entry.target),
            });
        };
        if actor == target {
            return Err(ValidationError::SelfTarget { index });
        }
        if entry.round == 0 {
            return Err(ValidationError::RoundZero { index });
        }
        if entry.round < previous_round {
            return Err(ValidationError::RoundDecreased {
                index,
                round: entry.round,
                previous: previous_round,
            });
        }
        previous_round = entry.round;
        if entry.action.trim().is_empty() || longer_than(&entry.action, MAX_ACTION_CHARS) {
            return Err(ValidationError::BadAction { index });
        }
        if longer_than(&entry.text, MAX_TEXT_CHARS) {
            return Err(ValidationError::TextTooLong { index });
        }
        hp[target] = Some(entry.target_hp);
        if entry.target_hp == 0 {
            if index + 1 != log.len() {
                return Err(ValidationError::EntriesAfterKnockout { index });
            }
            if target == winner {
                return Err(ValidationError::WinnerKnockedOut(quote(&result.winner)));
            }
        }
    }

    // Went the distance (or the knockout was already checked): the winner must not be behind.
    let loser = 1 - winner;
    if standing(hp[winner]) < standing(hp[loser]) {
        return Err(ValidationError::WinnerBehind {
            winner_hp: hp[winner],
            loser_hp: hp[loser],
        });
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), ValidationError> {
    if description.trim().is_empty() {
        return Err(ValidationError::EmptyDescription);
    }
    if longer_than(description, MAX_DESCRIPTION_CHARS) {
        return Err(ValidationError::DescriptionTooLong);
    }
    Ok(())
}

/// Whether `text` has more than `max` characters, without counting past `max + 1`.
fn longer_than(text: &str, max: usize) -> bool {
    text.len() > max && text.chars().nth(max).is_some()
}

/// A short, quotable piece of untrusted text for an error message.
fn quote(text: &str) -> String {
    text.chars().take(QUOTE_CHARS).collect()
}

/// Where a fighter stands: an untargeted fighter (None) is at full hp, ahead of anyone hit.
fn standing(hp: Option<u32>) -> u64 {
    hp.map_or(u64::MAX, u64::from)
}

fn hp(value: &Option<u32>) -> String {
    value.map_or_else(|| "full".to_owned(), |hp| hp.to_string())
}
