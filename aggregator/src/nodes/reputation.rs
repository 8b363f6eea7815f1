//! Per-node counters, reputation and the circuit breaker: pure bookkeeping.
//!
//! Reputation measures *reliability*: an exponential moving average (α = 0.1) of 1 for every
//! valid, signed, timely answer and 0 for every failure (error, timeout, garbage, a result
//! that fails validation, a bad signature). Disagreeing with a verdict costs nothing. A verdict
//! is not ground truth: a colluding majority of one battle makes it, and if dissent lowered
//! reputation, the honest minority of every captured battle would lose selection weight to
//! the colluders, and the capture would feed itself. Agreement is still counted
//! (`agreement_rate`, shown publicly and to admins) and ends probation; being busy (503 with
//! `Retry-After`) is neither success nor failure.

/// How one call to a node ended, as far as the node's record is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// A valid vote that agreed with the verdict.
    Agreed,
    /// A valid vote for the other fighter.
    Disagreed,
    /// A valid vote whose battle was settled otherwise (no verdict to compare with).
    Valid,
    /// Error, timeout, garbage or a result that failed validation.
    Failed,
    /// At capacity (503): not asked again for a while, no reputation change.
    Busy { retry_after_ms: i64 },
}

/// Consecutive failures that open the circuit breaker.
pub const BREAKER_THRESHOLD: u32 = 3;
/// How long an open breaker keeps a node out of selection.
pub const QUARANTINE_MS: i64 = 30_000;
/// Reputation never drops below this, so a node can earn its way back.
pub const MIN_REPUTATION: f64 = 0.05;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeCounters {
    pub total_requests: u64,
    pub successful_requests: u64,
    pub avg_response_time_ms: f64,
    pub valid_votes: u64,
    pub agreed_votes: u64,
    pub reputation: f64,
    pub consecutive_failures: u32,
    pub quarantined_until_ms: i64,
}

impl Default for NodeCounters {
    fn default() -> Self {
        Self {
            total_requests: 0,
            successful_requests: 0,
            avg_response_time_ms: 0.0,
            valid_votes: 0,
            agreed_votes: 0,
            reputation: 1.0,
            consecutive_failures: 0,
            quarantined_until_ms: 0,
        }
    }
}

impl NodeCounters {
    pub fn record(&mut self, outcome: VoteOutcome, latency_ms: u64, now_ms: i64) {
        if matches!(outcome, VoteOutcome::Busy { .. }) {
            return;
        }
        self.total_requests += 1;
        let n = self.total_requests as f64;
        self.avg_response_time_ms += (latency_ms as f64 - self.avg_response_time_ms) / n;
        let score = match outcome {
            VoteOutcome::Busy { .. } => return,
            VoteOutcome::Agreed | VoteOutcome::Valid | VoteOutcome::Disagreed => 1.0,
            VoteOutcome::Failed => 0.0,
        };
        self.reputation = (0.9 * self.reputation + 0.1 * score).clamp(MIN_REPUTATION, 1.0);
        if outcome == VoteOutcome::Failed {
            self.consecutive_failures += 1;
            if self.consecutive_failures >= BREAKER_THRESHOLD {
                self.quarantined_until_ms = now_ms + QUARANTINE_MS;
                self.consecutive_failures = 0;
            }
        } else {
            self.successful_requests += 1;
            self.valid_votes += 1;
            self.consecutive_failures = 0;
            if outcome == VoteOutcome::Agreed {
                self.agreed_votes += 1;
            }
        }
    }

    /// The counts gained since `base` (for adding to what another replica wrote).
    pub fn minus(&self, base: &NodeCounters) -> NodeCounters {
        NodeCounters {
            total_requests: self.total_requests.saturating_sub(base.total_requests),
            successful_requests: self
                .successful_requests
                .saturating_sub(base.successful_requests),
            valid_votes: self.valid_votes.saturating_sub(base.valid_votes),
            agreed_votes: self.agreed_votes.saturating_sub(base.agreed_votes),
            ..self.clone()
        }
    }

    /// Weight used by selection: configured weight × reputation, zero while quarantined.
    pub fn selection_weight(&self, weight: u32, now_ms: i64) -> f64 {
        if self.quarantined_until_ms > now_ms {
            0.0
        } else {
            f64::from(weight) * self.reputation
        }
    }

    pub fn agreement_rate(&self) -> f64 {
        if self.valid_votes == 0 {
            1.0
        } else {
            self.agreed_votes as f64 / self.valid_votes as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lower_reputation_and_open_the_breaker() {
        let mut c = NodeCounters::default();
        for _ in 0..BREAKER_THRESHOLD {
            c.record(VoteOutcome::Failed, 10, 1_000);
        }
        assert!(c.reputation < 1.0);
        assert_eq!(c.selection_weight(1, 1_000), 0.0);
        assert!(c.selection_weight(1, 1_000 + QUARANTINE_MS + 1) > 0.0);
        assert_eq!(c.successful_requests, 0);
        assert_eq!(c.total_requests, u64::from(BREAKER_THRESHOLD));
    }

    #[test]
    fn agreement_and_average_latency() {
        let mut c = NodeCounters::default();
        c.record(VoteOutcome::Agreed, 10, 0);
        c.record(VoteOutcome::Disagreed, 30, 0);
        assert_eq!(c.avg_response_time_ms, 20.0);
        assert_eq!(c.agreement_rate(), 0.5);
        assert_eq!(c.reputation, 1.0, "being outvoted costs no reputation");
    }

    #[test]
    fn busy_is_neither_success_nor_failure() {
        let mut c = NodeCounters::default();
        for _ in 0..10 {
            c.record(
                VoteOutcome::Busy {
                    retry_after_ms: 1_000,
                },
                1,
                0,
            );
        }
        assert_eq!(c, NodeCounters::default());
    }

    #[test]
    fn flushes_carry_only_what_was_added() {
        let mut c = NodeCounters::default();
        c.record(VoteOutcome::Agreed, 10, 0);
        let base = c.clone();
        c.record(VoteOutcome::Agreed, 10, 0);
        c.record(VoteOutcome::Failed, 10, 0);
        let added = c.minus(&base);
        assert_eq!(added.total_requests, 2);
        assert_eq!(added.successful_requests, 1);
        assert_eq!(added.agreed_votes, 1);
        assert_eq!(added.reputation, c.reputation);
    }

    #[test]
    fn reputation_recovers_but_stays_bounded() {
        let mut c = NodeCounters::default();
        for _ in 0..100 {
            c.record(VoteOutcome::Failed, 1, 0);
        }
        assert_eq!(c.reputation, MIN_REPUTATION);
        for _ in 0..100 {
            c.record(VoteOutcome::Agreed, 1, 0);
        }
        assert!(c.reputation > 0.99 && c.reputation <= 1.0);
    }
}
