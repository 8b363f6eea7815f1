//! Daily quests (the seed's DailyQuest / PlayerDailyQuest): progress moved by game events,
//! claimed once per UTC day for a ledger reward. The day comes from the clock, so quests
//! "reset" at UTC midnight without any job: a new day simply has no progress rows yet.

mod routes;
pub mod store;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use store::{progress, progress_many};

use crate::state::AppState;
use routes::{__path_claim, __path_list, claim, list};

pub const DAY_MS: i64 = 86_400_000;

/// A game event that moves quests of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QuestKind {
    /// A battle the player started was won.
    Win,
    /// A battle the player started was completed.
    Fight,
    Summon,
    Upgrade,
}

impl QuestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestKind::Win => "win",
            QuestKind::Fight => "fight",
            QuestKind::Summon => "summon",
            QuestKind::Upgrade => "upgrade",
        }
    }
}

/// The UTC day (days since the Unix epoch) of `now_ms`.
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS)
}

/// When the quests of the day of `now_ms` reset: the next UTC midnight.
pub fn resets_at(now_ms: i64) -> i64 {
    (day_of(now_ms) + 1) * DAY_MS
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(claim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_turn_at_utc_midnight() {
        let midnight = 19_000 * DAY_MS;
        assert_eq!(day_of(midnight - 1), 18_999);
        assert_eq!(day_of(midnight), 19_000);
        assert_eq!(resets_at(midnight - 1), midnight);
        assert_eq!(resets_at(midnight), midnight + DAY_MS);
        // Before 1970 the day still turns at midnight, not at zero.
        assert_eq!(day_of(-1), -1);
    }
}
