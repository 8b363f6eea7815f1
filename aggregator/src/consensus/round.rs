//! One consensus round: select k nodes, fan out, replace failures while time remains,
//! settle at the first strict majority, otherwise fall back to local generation.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use hero_engine::BattleEngine;
use hero_protocol::{BattleRequest, BattleResult, Fighter};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::call::{Budget, CallContext, call_node};
use super::hedge::{HedgeSettings, Hedging, Race};
use super::tally;
use super::vote::{Vote, VoteRole};
use crate::clock::SharedClock;
use crate::http::metrics::HEDGES;
use crate::nodes::NodeRegistry;

#[derive(Debug, Clone)]
pub struct ConsensusSettings {
    /// Nodes selected per battle (odd).
    pub k: usize,
    /// Longest a single node may take.
    pub node_timeout: Duration,
    /// Longest the whole round may take before falling back.
    pub deadline: Duration,
    /// Backup nodes that may replace failed ones in one round.
    pub max_replacements: usize,
    pub offline_after_ms: i64,
    /// Nodes on probation asked beside the k seats (shadow votes).
    pub shadow_seats: usize,
    /// When a backup is asked for a slow node's seat.
    pub hedge: HedgeSettings,
}

/// How a battle was decided.
#[derive(Debug, Clone)]
pub enum Verdict {
    Quorum {
        result: BattleResult,
    },
    Fallback {
        result: BattleResult,
        engine: String,
        reason: String,
    },
    /// Not even the local engines could produce a result (e.g. an unplayable snapshot).
    Error(String),
}

impl Verdict {
    /// The published result: the quorum's or the fallback engine's.
    pub fn result(&self) -> Option<&BattleResult> {
        match self {
            Verdict::Quorum { result } | Verdict::Fallback { result, .. } => Some(result),
            Verdict::Error(_) => None,
        }
    }

    pub fn winner(&self) -> Option<&str> {
        self.result().map(|r| r.winner.as_str())
    }
}

type VoteFuture = BoxFuture<'static, Vote>;

/// A shadow vote's call, running on its own task.
struct Shadow {
    node_id: String,
    call: tokio::task::JoinHandle<Vote>,
}

/// Shadow calls join the calls still running when the round ends: they are recorded when
/// they arrive (the battle worker judges whether they came before the verdict was written).
fn collect_shadows(shadows: Vec<Shadow>, pending: &FuturesUnordered<VoteFuture>) {
    for Shadow { node_id, call } in shadows {
        pending.push(Box::pin(async move {
            call.await
                .unwrap_or_else(|_| Vote::lost(node_id, VoteRole::Shadow))
        }));
    }
}

/// Waits until every shadow call has ended, or the deadline.
async fn wait_for_shadows(shadows: &[Shadow], deadline: Instant) {
    while shadows.iter().any(|s| !s.call.is_finished()) && Instant::now() < deadline {
        tokio::time::sleep(SHADOW_POLL.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}

/// How often a round about to fall back checks whether its shadow votes are in.
const SHADOW_POLL: Duration = Duration::from_millis(2);

/// How often a round short of nodes retries busy ones.
const CAPACITY_RETRY: Duration = Duration::from_millis(5);

/// No call starts with less time left than this (or a whole node timeout, when shorter): a
/// node asked moments before the deadline could not answer, and would be blamed for it.
const MIN_CALL_BUDGET: Duration = Duration::from_secs(1);
/// Time a call may lose to the round's own bookkeeping and still count as whole.
const BUDGET_SLACK: Duration = Duration::from_millis(10);

/// Longest a round short of nodes waits for nodes that are full by their own word (their
/// heartbeat's report of other replicas' calls, or a 503), none of them with a call of this
/// replica's: a node saying it is full costs nothing, so a round does not wait out its
/// deadline on that word alone. Nodes full with this replica's calls are waited for until the
/// deadline: those calls end within the node timeout.
const WAIT_ON_WORD: Duration = Duration::from_secs(3);

/// Calls still running when the verdict was reached; their votes are recorded afterwards.
pub struct Pending {
    calls: FuturesUnordered<VoteFuture>,
    hedging: Arc<Hedging>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Waits for every outstanding call (each is bounded by its own timeout). Their answer
    /// times join the pool's: the slowest answers come after the verdict.
    pub async fn finish(self) -> Vec<Vote> {
        let votes: Vec<Vote> = self.calls.collect().await;
        for vote in &votes {
            observe(&self.hedging, vote);
        }
        votes
    }
}

/// Remembers a counted valid answer's time for the hedge delay.
fn observe(hedging: &Hedging, vote: &Vote) {
    // A call cancelled by a hedge took at least this long: leaving it out would remove the
    // slowest answers from the pool and pull the percentile down with every hedge.
    if (vote.valid || vote.superseded) && vote.role != VoteRole::Shadow {
        hedging.observe(vote.elapsed);
    }
}

pub struct Decision {
    pub verdict: Verdict,
    pub votes: Vec<Vote>,
    pub pending: Pending,
}

/// The calls of one round and who has been asked so far.
struct Fanout {
    ctx: Arc<CallContext>,
    deadline: Instant,
    tried: Vec<String>,
    operators: Vec<String>,
    calls: FuturesUnordered<VoteFuture>,
    /// Counted calls not answered yet, oldest first, each with what cancels it.
    outstanding: Vec<(String, CancellationToken)>,
    /// Live events of the battle, when someone listens.
    feed: Option<Arc<dyn RoundWatcher>>,
}

impl Fanout {
    /// Cancels the counted call to `node_id` if it is still running: it ends at once as a
    /// cancelled vote.
    fn cancel(&self, node_id: &str) {
        if let Some((_, token)) = self.outstanding.iter().find(|(id, _)| id == node_id) {
            token.cancel();
        }
    }

    fn answered(&mut self, node_id: &str) {
        self.outstanding.retain(|(id, _)| id != node_id);
    }

    fn running(&self, node_id: &str) -> bool {
        self.outstanding.iter().any(|(id, _)| id == node_id)
    }
}

/// Who watches a round as it happens (the live events of the battles domain).
pub trait RoundWatcher: Send + Sync {
    /// Whether anyone listens now: nothing is built for nobody.
    fn listened(&self) -> bool;
    fn node_selected(&self, node_id: &str, node_name: &str, role: &str);
    /// A vote arrived (`late`: after the verdict).
    fn vote(&self, vote: &Vote, node_name: &str, late: bool);
}

pub struct Consensus {
    pub registry: Arc<NodeRegistry>,
    pub client: reqwest::Client,
    pub clock: SharedClock,
    pub settings: ConsensusSettings,
    /// Local engines tried in order when no quorum forms (Gemini when configured, then Sim).
    pub fallbacks: Vec<Arc<dyn BattleEngine>>,
    /// The pool's recent answer times and the hedge budget.
    pub hedging: Arc<Hedging>,
}

impl Consensus {
    /// Consensus over the nodes of `registry`, calling them with
    /// [`crate::nodes::url_policy::node_client`].
    pub fn new(
        registry: Arc<NodeRegistry>,
        clock: SharedClock,
        settings: ConsensusSettings,
        fallbacks: Vec<Arc<dyn BattleEngine>>,
        allow_private_node_urls: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            registry,
            client: crate::nodes::url_policy::node_client(allow_private_node_urls)?,
            clock,
            hedging: Arc::new(Hedging::new(settings.hedge)),
            settings,
            fallbacks,
        })
    }

    /// Selects up to `n` more nodes, none already tried and none of an operator already used,
    /// and starts a call to each; returns how many were started (none once too little time
    /// is left: [`MIN_CALL_BUDGET`]).
    fn launch(&self, fanout: &mut Fanout, n: usize, role: VoteRole) -> usize {
        let Some(budget) = self.budget(fanout.deadline) else {
            return 0;
        };
        let assignments = self.registry.assign(
            n,
            &fanout.tried,
            &fanout.operators,
            self.clock.now_ms(),
            self.settings.offline_after_ms,
        );
        tracing::debug!(
            role = role.as_str(),
            nodes = ?assignments.iter().map(|a| a.node.id.as_str()).collect::<Vec<_>>(),
            "nodes selected"
        );
        let count = assignments.len();
        for a in assignments {
            if let Some(feed) = fanout.feed.as_ref().filter(|f| f.listened()) {
                feed.node_selected(&a.node.id, &a.node.name, role.as_str());
            }
            fanout.tried.push(a.node.id.clone());
            if let Some(op) = &a.node.operator {
                fanout.operators.push(op.clone());
            }
            let ctx = Arc::clone(&fanout.ctx);
            let cancel = CancellationToken::new();
            let node_id = a.node.id.clone();
            fanout.outstanding.push((node_id.clone(), cancel.clone()));
            fanout.calls.push(Box::pin(async move {
                let started = std::time::Instant::now();
                tokio::select! {
                    // Cancellation first: a call cancelled as it answered stays cancelled.
                    biased;
                    () = cancel.cancelled() => Vote::cancelled(node_id, role, started.elapsed()),
                    vote = call_node(ctx, a, role, budget) => vote,
                }
            }));
        }
        count
    }

    /// The time a call started now may take: a whole node timeout, or what is left before
    /// `deadline` (cut short); `None` when that is below [`MIN_CALL_BUDGET`].
    fn budget(&self, deadline: Instant) -> Option<Budget> {
        // What the first calls of a round get.
        let whole = self.settings.node_timeout.min(self.settings.deadline);
        let left = deadline.saturating_duration_since(Instant::now());
        // (The first calls start microseconds after the deadline is set: they always go.)
        if left + BUDGET_SLACK < whole.min(MIN_CALL_BUDGET) {
            return None;
        }
        let timeout = self.settings.node_timeout.min(left);
        Some(Budget {
            timeout,
            cut_short: timeout + BUDGET_SLACK < whole,
        })
    }

    /// Asks one backup for the seat of the oldest counted call still running, when the
    /// budget allows; returns the race it starts.
    fn hedge(&self, fanout: &mut Fanout) -> Option<Race> {
        let slow = fanout.outstanding.first()?.0.clone();
        if !self.hedging.spend() {
            return None;
        }
        if self.launch(fanout, 1, VoteRole::Replacement) == 0 {
            self.hedging.refund();
            return None;
        }
        let backup = fanout.tried.last()?.clone();
        tracing::debug!(slow = %slow, backup = %backup, "hedged a slow node");
        Some(Race {
            slow,
            backup,
            winner: None,
        })
    }

    /// Settles a race when one of its calls answers: a valid answer takes the seat and
    /// cancels the other call; an answer after the seat was taken is not counted. Returns
    /// whether the other call still runs for the seat (so a failure needs no replacement).
    fn run_race(race: &mut Race, fanout: &Fanout, vote: &mut Vote) -> bool {
        let partner = race.partner(&vote.node_id).to_owned();
        if race.winner.as_deref().is_some_and(|w| w != vote.node_id) {
            if !vote.superseded {
                vote.supersede();
            }
            return false;
        }
        if vote.valid {
            let took = if vote.node_id == race.backup {
                "backup"
            } else {
                "slow"
            };
            metrics::counter!(HEDGES, "seat" => took).increment(1);
            race.winner = Some(vote.node_id.clone());
            fanout.cancel(&partner);
            return false;
        }
        fanout.running(&partner)
    }

    fn busy_nodes_exist(&self, fanout: &Fanout, started: Instant) -> bool {
        self.registry.has_busy_candidates(
            &fanout.tried,
            &fanout.operators,
            self.clock.now_ms(),
            self.settings.offline_after_ms,
            started.elapsed() < WAIT_ON_WORD,
        )
    }

    /// Runs the round for one battle (its logs carry `battle.id` from the worker's span).
    pub async fn decide(
        &self,
        request: &BattleRequest,
        fighters: &[Fighter],
        feed: Option<Arc<dyn RoundWatcher>>,
    ) -> Decision {
        let k = self.settings.k;
        let started = Instant::now();
        let deadline = started + self.settings.deadline;
        let ctx = Arc::new(CallContext {
            client: self.client.clone(),
            battle_id: request.battle_id.clone(),
            body: serde_json::to_vec(request).unwrap_or_default(),
            fighters: Arc::new(fighters.to_vec()),
        });
        let mut fanout = Fanout {
            ctx,
            deadline,
            tried: Vec::new(),
            operators: Vec::new(),
            calls: FuturesUnordered::new(),
            outstanding: Vec::new(),
            feed,
        };
        self.hedging.earn(k);
        // One backup at most, once the round runs longer than the pool's recent answers.
        let mut hedge_at = self.hedging.delay().map(|d| Instant::now() + d);
        let mut race: Option<Race> = None;
        // Slots of the k that no node could take yet because every candidate was busy.
        let mut unfilled = k - self.launch(&mut fanout, k, VoteRole::Selected);
        // Nodes on probation vote in the shadow: their calls run now, beside the round (as
        // tasks of their own), are recorded, and are never counted.
        let timeout = self.settings.node_timeout;
        let shadows: Vec<Shadow> = self
            .registry
            .assign_shadows(
                self.settings.shadow_seats,
                &fanout.operators,
                self.clock.now_ms(),
                self.settings.offline_after_ms,
            )
            .into_iter()
            .map(|a| Shadow {
                // Not announced: who is on probation stays unknown until the verdict.
                node_id: a.node.id.clone(),
                call: tokio::spawn(call_node(
                    Arc::clone(&fanout.ctx),
                    a,
                    VoteRole::Shadow,
                    Budget::full(timeout),
                )),
            })
            .collect();
        let mut replacements_left = self.settings.max_replacements;
        let mut votes: Vec<Vote> = Vec::new();
        let mut reason = "no node answered before the deadline".to_string();
        loop {
            if unfilled > 0 && Instant::now() < deadline {
                unfilled -= self.launch(&mut fanout, unfilled, VoteRole::Selected);
            }
            if hedge_at.is_some_and(|at| Instant::now() >= at) {
                hedge_at = None;
                race = self.hedge(&mut fanout);
            }
            let waiting_for_capacity = unfilled > 0 && self.busy_nodes_exist(&fanout, started);
            if fanout.calls.is_empty() && !waiting_for_capacity {
                reason = if votes.is_empty() {
                    "no online node with free capacity".into()
                } else {
                    "not enough valid votes agreed".into()
                };
                break;
            }
            // While slots are unfilled, wake up now and then to retry them.
            let wake = if waiting_for_capacity {
                deadline.min(Instant::now() + CAPACITY_RETRY)
            } else {
                deadline
            };
            let wake = hedge_at.map_or(wake, |at| wake.min(at));
            let mut vote = match tokio::time::timeout_at(wake, fanout.calls.next()).await {
                Ok(Some(vote)) => vote,
                Ok(None) => {
                    // No call in flight: wait for capacity until the next retry.
                    tokio::time::sleep_until(wake).await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    continue;
                }
                Err(_) if Instant::now() < deadline => continue,
                Err(_) => break,
            };
            fanout.answered(&vote.node_id);
            observe(&self.hedging, &vote);
            let partner_running = match race.as_mut().filter(|r| r.involves(&vote.node_id)) {
                Some(r) => Self::run_race(r, &fanout, &mut vote),
                None => false,
            };
            let failed = !vote.valid && !vote.superseded;
            if let Some(retry_after_ms) = vote.busy_retry_after_ms {
                // Busy is not failure: keep it out of selection for a while, at no cost.
                if let Some(node) = self.registry.get(&vote.node_id) {
                    node.mark_busy(self.clock.now_ms() + retry_after_ms);
                }
            }
            if let Some(feed) = fanout.feed.as_ref().filter(|f| f.listened()) {
                let name = self
                    .registry
                    .get(&vote.node_id)
                    .map_or_else(String::new, |n| n.name.clone());
                feed.vote(&vote, &name, false);
            }
            votes.push(vote);
            let winners = || votes.iter().filter_map(Vote::counted_winner);
            if let Some(winner) = tally::verdict(k, winners()) {
                let agreeing: Vec<&Vote> = votes
                    .iter()
                    .filter(|v| v.counted_winner() == Some(winner))
                    .collect();
                let candidates: Vec<([u8; 32], f64)> = agreeing
                    .iter()
                    .map(|v| (v.result_hash.unwrap_or_default(), v.reputation))
                    .collect();
                let result = tally::published(k, &candidates)
                    .and_then(|i| agreeing.get(i))
                    .and_then(|v| v.result.clone());
                if let Some(result) = result {
                    // A backup still racing a slow call is not needed any more (one whose
                    // slow partner failed holds that seat, and runs on as a late vote).
                    if let Some(r) = race
                        .as_ref()
                        .filter(|r| r.winner.is_none() && fanout.running(&r.slow))
                    {
                        metrics::counter!(HEDGES, "seat" => "none").increment(1);
                        fanout.cancel(&r.backup);
                    }
                    collect_shadows(shadows, &fanout.calls);
                    return Decision {
                        verdict: Verdict::Quorum { result },
                        votes,
                        pending: self.pending(fanout.calls),
                    };
                }
            }
            if failed && !partner_running && replacements_left > 0 && Instant::now() < deadline {
                replacements_left -= self.launch(&mut fanout, 1, VoteRole::Replacement);
            }
            // Two calls racing for one seat can bring one vote at most.
            let racing = race.as_ref().is_some_and(|r| {
                r.winner.is_none() && fanout.running(&r.slow) && fanout.running(&r.backup)
            });
            let outstanding = fanout.calls.len() - usize::from(racing);
            if !tally::still_reachable(k, winners(), outstanding + replacements_left + unfilled) {
                reason = "the valid votes cannot reach a majority".into();
                break;
            }
        }
        // Without a quorum, shadow votes are the only way new nodes earn trust (a network of
        // new nodes starts here): give them until the deadline, before the verdict exists.
        wait_for_shadows(&shadows, deadline).await;
        collect_shadows(shadows, &fanout.calls);
        Decision {
            verdict: self.fall_back(request, fighters, reason).await,
            votes,
            pending: self.pending(fanout.calls),
        }
    }

    fn pending(&self, calls: FuturesUnordered<VoteFuture>) -> Pending {
        Pending {
            calls,
            hedging: Arc::clone(&self.hedging),
        }
    }

    async fn fall_back(
        &self,
        request: &BattleRequest,
        fighters: &[Fighter],
        reason: String,
    ) -> Verdict {
        let mut request = request.clone();
        request.fighters = Some(fighters.to_vec());
        let mut last_error = String::from("no fallback engine configured");
        for engine in &self.fallbacks {
            match engine.generate(&request).await {
                Ok(result) => match hero_engine::validate(fighters, &result) {
                    Ok(()) => {
                        return Verdict::Fallback {
                            result,
                            engine: engine.kind().to_string(),
                            reason,
                        };
                    }
                    Err(e) => {
                        last_error = format!("{} fallback result invalid: {e}", engine.kind())
                    }
                },
                Err(e) => last_error = format!("{} fallback failed: {e}", engine.kind()),
            }
            tracing::warn!(battle.id = %request.battle_id, error = %last_error, "fallback engine failed");
        }
        Verdict::Error(last_error)
    }
}
