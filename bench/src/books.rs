//! The books after a run: every battle created since a moment settled once, by quorum, with at
//! least two agreeing valid votes recorded. The soak and every battle scenario check them.

/// What the database says of the battles created since a moment.
#[derive(Debug, Default)]
pub struct Check {
    pub created: i64,
    pub settled: i64,
    pub by_quorum: i64,
    pub by_fallback: i64,
    pub errors: i64,
    pub retried: i64,
    /// Settled by quorum with fewer than 2 agreeing valid votes recorded: a broken book.
    pub without_quorum_votes: i64,
    /// Battles with fewer than 3 votes: a node was not selectable (busy or late on its
    /// heartbeat under load), which a quorum of 2 of 3 settles all the same.
    pub two_node_battles: i64,
}

impl Check {
    pub async fn run(pool: &sqlx::AnyPool, since_ms: i64) -> anyhow::Result<Check> {
        let count = |sql: &'static str| async move {
            let n: i64 = sqlx::query_scalar(sql)
                .bind(since_ms)
                .fetch_one(pool)
                .await?;
            anyhow::Ok(n)
        };
        Ok(Check {
            created: count("SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1").await?,
            settled: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 \
                 AND status IN ('COMPLETED', 'ERROR')",
            )
            .await?,
            by_quorum: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 AND settled_by = 'quorum'",
            )
            .await?,
            by_fallback: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 \
                 AND settled_by = 'fallback'",
            )
            .await?,
            errors: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 AND status = 'ERROR'",
            )
            .await?,
            retried: count(
                "SELECT COUNT(*) FROM battles WHERE created_at_ms >= $1 AND attempts <> 1",
            )
            .await?,
            without_quorum_votes: count(
                "SELECT COUNT(*) FROM battles b WHERE b.created_at_ms >= $1 AND \
                 (SELECT COUNT(*) FROM battle_votes v WHERE v.battle_id = b.id AND v.is_valid = 1 \
                  AND v.agrees = 1) < 2",
            )
            .await?,
            two_node_battles: count(
                "SELECT COUNT(*) FROM battles b WHERE b.created_at_ms >= $1 AND \
                 (SELECT COUNT(*) FROM battle_votes v WHERE v.battle_id = b.id) < 3",
            )
            .await?,
        })
    }

    /// Battles not settled once by quorum with 2 agreeing valid votes (fallbacks included).
    pub fn problems(&self) -> i64 {
        (self.created - self.by_quorum) + self.without_quorum_votes
    }

    /// Every count, as one sentence.
    pub fn describe(&self) -> String {
        format!(
            "{} created, {} settled: {} by quorum, {} by fallback, {} errors; {} retried; {} without 2 agreeing valid votes; {} asked only 2 nodes",
            self.created,
            self.settled,
            self.by_quorum,
            self.by_fallback,
            self.errors,
            self.retried,
            self.without_quorum_votes,
            self.two_node_battles
        )
    }

    /// Records the books in a scenario's outcome: the fallbacks and the verdict in the line,
    /// every count in the JSON, and a failed check when any battle is off the books.
    pub fn report(&self, outcome: &mut crate::report::Outcome) {
        outcome.detail(format!(
            "{} fallbacks, books {}",
            self.by_fallback,
            if self.problems() == 0 { "ok" } else { "OFF" }
        ));
        outcome.set(
            "books",
            serde_json::json!({
                "created": self.created,
                "settled": self.settled,
                "by_quorum": self.by_quorum,
                "by_fallback": self.by_fallback,
                "errors": self.errors,
                "retried": self.retried,
                "without_quorum_votes": self.without_quorum_votes,
                "two_node_battles": self.two_node_battles,
                "problems": self.problems(),
            }),
        );
        outcome.check(self.problems() == 0, format!("books: {}", self.describe()));
    }
}
