//! The hub: every live event of this process passes through it on its way to the SSE and
//! WebSocket connections, and (on PostgreSQL) to the other replicas.
//!
//! Nothing is kept or built while nobody listens: [`Hub::wanted`] is false without local
//! subscribers and without word from another replica that it has some, and the emitters skip
//! their work then. While
//! someone listens, the last [`EVENTS_PER_BATTLE`] events of the last [`BATTLES_KEPT`]
//! battles stay in memory so a client that reconnects with `Last-Event-ID` misses nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc};

/// Battles whose recent events are kept for resuming clients.
pub const BATTLES_KEPT: usize = 2048;
/// Events kept per battle (a battle has k selections, k votes, a verdict, rewards, the end).
pub const EVENTS_PER_BATTLE: usize = 64;
/// Events in flight between the hub and its subscribers' tasks before the slowest lags.
const LIVE_CAPACITY: usize = 4096;
/// The ids of one settling attempt start at `attempt * ATTEMPT_SPAN`.
pub const ATTEMPT_SPAN: u64 = 1000;
/// `created` is the first event of every battle.
pub const CREATED_ID: u64 = 1;
/// After the last listener leaves, events are still kept this long for one that reconnects.
const RECONNECT_GRACE_MS: u64 = 60_000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The battle exists (sent to "mine" and "ladder" subscribers).
    Created,
    /// A node was asked to vote.
    NodeSelected,
    /// A node answered (valid or not).
    Vote,
    /// The battle is settled.
    Verdict,
    /// What the players of a player battle earned.
    Rewards,
    /// No more events for this battle.
    End,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::NodeSelected => "node_selected",
            Kind::Vote => "vote",
            Kind::Verdict => "verdict",
            Kind::Rewards => "rewards",
            Kind::End => "end",
        }
    }
}

/// One event of one battle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub battle_id: String,
    /// Increasing within the battle (`Last-Event-ID`).
    pub id: u64,
    pub kind: Kind,
    /// The players whose battle it is (their "mine" subscriptions see it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub players: Vec<String>,
    /// A ladder battle (the "ladder" subscriptions see it).
    #[serde(default)]
    pub ladder: bool,
    /// Private to this player (their `mine`) and the admin (`all`): a player's rewards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub data: serde_json::Value,
}

impl Event {
    /// Whether anyone following the battle may see it (not a player's private event).
    pub fn public(&self) -> bool {
        self.owner.is_none()
    }
}

/// What a replica sends the others.
#[derive(Debug, Serialize, Deserialize)]
pub struct Wire {
    pub origin: String,
    pub event: Event,
}

#[derive(Default)]
struct Recent {
    by_battle: HashMap<String, VecDeque<Arc<Event>>>,
    order: VecDeque<String>,
}

impl Recent {
    fn push(&mut self, event: Arc<Event>) {
        if !self.by_battle.contains_key(&event.battle_id) {
            if self.order.len() >= BATTLES_KEPT
                && let Some(old) = self.order.pop_front()
            {
                self.by_battle.remove(&old);
            }
            self.order.push_back(event.battle_id.clone());
        }
        let kept = self.by_battle.entry(event.battle_id.clone()).or_default();
        if kept.len() >= EVENTS_PER_BATTLE {
            kept.pop_front();
        }
        kept.push_back(event);
    }
}

pub struct Hub {
    /// This replica, so it ignores its own events coming back from PostgreSQL.
    pub origin: String,
    live: broadcast::Sender<Arc<Event>>,
    recent: Mutex<Recent>,
    /// To the other replicas (set when the PostgreSQL bridge runs).
    outbox: OnceLock<mpsc::Sender<Arc<Event>>>,
    /// Until when (ms after `born`) another replica has said it has listeners.
    remote_interest_until: AtomicU64,
    /// When (ms after `born`) the last event was delivered with listeners present; 0: never.
    last_listener_ms: AtomicU64,
    born: Instant,
    /// Woken when this replica gets its first listener (the bridge says so at once).
    pub first_listener: Notify,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            origin: uuid::Uuid::new_v4().simple().to_string(),
            live: broadcast::channel(LIVE_CAPACITY).0,
            recent: Mutex::default(),
            outbox: OnceLock::new(),
            remote_interest_until: AtomicU64::new(0),
            last_listener_ms: AtomicU64::new(0),
            born: Instant::now(),
            first_listener: Notify::new(),
        }
    }
}

impl Hub {
    /// Whether an event published now would reach anyone.
    pub fn wanted(&self) -> bool {
        self.has_listeners() || self.remote_interest()
    }

    /// Whether this replica has live connections.
    pub fn has_listeners(&self) -> bool {
        self.live.receiver_count() > 0
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Another replica has listeners: publish for `window` at least.
    pub fn remote_listeners(&self, window: Duration) {
        let until = self.now_ms() + u64::try_from(window.as_millis()).unwrap_or(0);
        self.remote_interest_until
            .fetch_max(until, Ordering::Relaxed);
    }

    fn remote_interest(&self) -> bool {
        self.outbox.get().is_some()
            && self.remote_interest_until.load(Ordering::Relaxed) > self.now_ms()
    }

    /// Sends the events of this replica to the others too.
    pub fn bridge(&self, outbox: mpsc::Sender<Arc<Event>>) {
        let _ = self.outbox.set(outbox);
    }

    /// An event of this replica: to local subscribers, and to the other replicas when any of
    /// them has listeners.
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        if self.remote_interest()
            && let Some(outbox) = self.outbox.get()
            && outbox.try_send(Arc::clone(&event)).is_err()
        {
            metrics::counter!(crate::http::metrics::EVENTS_DROPPED, "reason" => "bridge_full")
                .increment(1);
        }
        self.deliver(event);
    }

    /// An event (of this or another replica) to the local subscribers.
    pub fn deliver(&self, event: Arc<Event>) {
        if self.live.receiver_count() == 0 {
            // A client reconnecting finds what it missed meanwhile, for a while.
            let last = self.last_listener_ms.load(Ordering::Relaxed);
            if last == 0 || self.now_ms() > last.saturating_add(RECONNECT_GRACE_MS) {
                return;
            }
        } else {
            self.last_listener_ms
                .store(self.now_ms().max(1), Ordering::Relaxed);
        }
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&event));
        let _ = self.live.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        let first = self.live.receiver_count() == 0;
        let receiver = self.live.subscribe();
        if first {
            self.first_listener.notify_one();
        }
        receiver
    }

    /// The kept events of `battle_id` after `after`, when none since `after` was lost (the
    /// battle's kept history reaches back to `after` or to its creation); `None` otherwise.
    pub fn since(&self, battle_id: &str, after: u64) -> Option<Vec<Arc<Event>>> {
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kept = recent.by_battle.get(battle_id)?;
        // The client's last event must be kept (or be the start), and nothing after it lost.
        let mut previous = if after == 0 {
            0
        } else {
            kept.iter().find(|e| e.id == after)?.id
        };
        let mut missed = Vec::new();
        for event in kept.iter().filter(|e| e.id > after) {
            if !follows(previous, event) {
                return None;
            }
            previous = event.id;
            missed.push(Arc::clone(event));
        }
        Some(missed)
    }

    /// The latest kept event id of `battle_id`.
    pub fn last_id(&self, battle_id: &str) -> Option<u64> {
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.by_battle.get(battle_id)?.back().map(|e| e.id)
    }
}

/// Whether `event` comes right after the event `previous` of its battle: ids are dense
/// within an attempt (`attempt * ATTEMPT_SPAN + 1, + 2, ...`), a new attempt starts a new
/// span, and `end` takes its span's last id.
fn follows(previous: u64, event: &Event) -> bool {
    let span = |id: u64| id / ATTEMPT_SPAN;
    match event.kind {
        Kind::Created => previous == 0,
        Kind::End => span(event.id) == span(previous) || previous.is_multiple_of(ATTEMPT_SPAN),
        _ if span(event.id) == span(previous) => event.id == previous + 1,
        _ => span(event.id) > span(previous) && event.id % ATTEMPT_SPAN == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(battle: &str, id: u64, kind: Kind) -> Event {
        Event {
            battle_id: battle.into(),
            id,
            kind,
            players: Vec::new(),
            ladder: false,
            owner: None,
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn nothing_is_kept_while_nobody_listens() {
        let hub = Hub::default();
        assert!(!hub.wanted());
        hub.publish(event("b", 1, Kind::Created));
        assert!(hub.since("b", 0).is_none());
        let _listener = hub.subscribe();
        assert!(hub.wanted());
        hub.publish(event("b", 1001, Kind::NodeSelected));
        assert_eq!(hub.last_id("b"), Some(1001));
    }

    #[test]
    fn resuming_needs_the_history_since_the_last_seen_event() {
        let hub = Hub::default();
        let _listener = hub.subscribe();
        for id in [1001, 1002, 1003] {
            hub.publish(event("b", id, Kind::Vote));
        }
        let after: Vec<u64> = hub.since("b", 1001).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(after, [1002, 1003]);
        // Events before 1001 were never kept: a client that saw only 5 gets a snapshot.
        assert!(hub.since("b", 5).is_none());
        assert!(hub.since("other", 0).is_none());
        // A hole (1004 never reached this replica) means a snapshot, not a silent gap.
        hub.publish(event("b", 1005, Kind::Vote));
        assert!(hub.since("b", 1003).is_none());
        assert_eq!(hub.since("b", 1005).unwrap().len(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let hub = Hub::default();
        let _listener = hub.subscribe();
        for b in 0..BATTLES_KEPT + 10 {
            for id in 0..(EVENTS_PER_BATTLE as u64 + 5) {
                hub.deliver(Arc::new(event(&format!("b{b}"), id + 1, Kind::Vote)));
            }
        }
        let recent = hub.recent.lock().unwrap();
        assert_eq!(recent.by_battle.len(), BATTLES_KEPT);
        assert!(
            recent
                .by_battle
                .values()
                .all(|v| v.len() == EVENTS_PER_BATTLE)
        );
        assert!(!recent.by_battle.contains_key("b0"));
    }
}
