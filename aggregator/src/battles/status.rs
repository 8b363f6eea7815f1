//! The words a battle row is written in: its status and how it was settled.

use serde::Serialize;
use utoipa::ToSchema;

use crate::consensus::Verdict;

/// PENDING → RUNNING → COMPLETED | ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Running,
    Completed,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Error => "ERROR",
        }
    }
}

/// How a completed battle was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettledBy {
    /// A strict majority of the selected nodes agreed.
    Quorum,
    /// No quorum formed: the aggregator generated the result itself.
    Fallback,
}

impl SettledBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SettledBy::Quorum => "quorum",
            SettledBy::Fallback => "fallback",
        }
    }

    /// How `verdict` settles its battle; `None` for an error.
    pub fn of(verdict: &Verdict) -> Option<SettledBy> {
        match verdict {
            Verdict::Quorum { .. } => Some(SettledBy::Quorum),
            Verdict::Fallback { .. } => Some(SettledBy::Fallback),
            Verdict::Error(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_their_serde_names() {
        for s in [
            Status::Pending,
            Status::Running,
            Status::Completed,
            Status::Error,
        ] {
            assert_eq!(serde_json::to_value(s).ok(), Some(s.as_str().into()));
        }
        for s in [SettledBy::Quorum, SettledBy::Fallback] {
            assert_eq!(serde_json::to_value(s).ok(), Some(s.as_str().into()));
        }
    }
}
