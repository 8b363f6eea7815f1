//! Across replicas on PostgreSQL: each replica sends its events with `NOTIFY` on one channel
//! and `LISTEN`s to the others', so a client connected to any replica sees every battle,
//! whichever replica settles it. Events are sent in batches (several per notification, each
//! notification under PostgreSQL's 8,000-byte payload limit). A replica that loses its
//! listening connection reconnects; events sent meanwhile are missed, and its clients get a
//! snapshot when they resume.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hub::{Event, Hub, Wire};
use crate::db::{Db, Dialect};
use crate::supervisor::{Stage, Supervisor};

pub const CHANNEL: &str = "hero_battle_events";
/// Replicas with listeners say so on this channel, so the others publish their events.
pub const INTEREST: &str = "hero_battle_listeners";
/// How often a replica with listeners says so; the others publish for three times as long.
const INTEREST_EVERY: Duration = Duration::from_secs(2);
/// Largest notification payload we send (PostgreSQL refuses 8,000 bytes and more).
const MAX_PAYLOAD: usize = 7_500;
/// Events waiting to be sent before new ones are dropped (and counted).
const OUTBOX: usize = 16_384;

/// Starts the bridge when the database is PostgreSQL.
pub fn start(db: &Db, url: &str, hub: &Arc<Hub>, supervisor: &Supervisor) {
    if db.dialect != Dialect::Postgres {
        return;
    }
    let (tx, rx) = mpsc::channel(OUTBOX);
    hub.bridge(tx);
    // Until the last stage: verdicts of battles drained at shutdown still reach the others.
    let stop = supervisor.stop_token(Stage::Background);
    supervisor.spawn(
        Stage::Background,
        notify(db.clone(), Arc::clone(hub), rx, stop.clone()),
    );
    supervisor.spawn(
        Stage::Background,
        listen(url.to_owned(), Arc::clone(hub), stop),
    );
}

/// Packs the events' wire form into payloads under the limit.
fn payloads(origin: &str, events: &[Arc<Event>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::from("[");
    for event in events {
        let wire = Wire {
            origin: origin.to_owned(),
            event: (**event).clone(),
        };
        let Ok(one) = serde_json::to_string(&wire) else {
            continue;
        };
        if one.len() + 2 > MAX_PAYLOAD {
            super::dropped("too_large");
            continue;
        }
        if current.len() + one.len() + 2 > MAX_PAYLOAD {
            current.push(']');
            out.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&one);
    }
    if current.len() > 1 {
        current.push(']');
        out.push(current);
    }
    out
}

async fn notify(
    db: Db,
    hub: Arc<Hub>,
    mut rx: mpsc::Receiver<Arc<Event>>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(256);
    let mut interest = tokio::time::interval(INTEREST_EVERY);
    loop {
        let announce = tokio::select! {
            () = stop.cancelled() => return,
            () = hub.first_listener.notified() => true,
            _ = interest.tick() => hub.has_listeners(),
            n = rx.recv_many(&mut batch, 256) => if n == 0 { return } else { false },
        };
        if announce
            && let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(INTEREST)
                .bind(&hub.origin)
                .execute(&db.pool)
                .await
        {
            tracing::warn!(error = %e, "live events: cannot tell the other replicas about listeners");
        }
        for payload in payloads(&hub.origin, &batch) {
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&db.pool)
                .await
            {
                super::dropped("notify_failed");
                tracing::warn!(error = %e, "live events: NOTIFY failed; other replicas miss them");
            }
        }
        batch.clear();
    }
}

async fn listen(url: String, hub: Arc<Hub>, stop: CancellationToken) {
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen_all([CHANNEL, INTEREST]).await {
                    tracing::warn!(error = %e, "live events: LISTEN failed; retrying");
                } else {
                    tracing::debug!("live events: listening to the other replicas");
                    loop {
                        let received = tokio::select! {
                            () = stop.cancelled() => return,
                            r = listener.recv() => r,
                        };
                        match received {
                            Ok(notification) if notification.channel() == INTEREST => {
                                if notification.payload() != hub.origin {
                                    hub.remote_listeners(INTEREST_EVERY * 3);
                                }
                            }
                            Ok(notification) => receive(&hub, notification.payload()),
                            Err(e) => {
                                tracing::warn!(error = %e, "live events: listening connection lost");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "live events: cannot connect to listen; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn receive(hub: &Hub, payload: &str) {
    let Ok(wires) = serde_json::from_str::<Vec<Wire>>(payload) else {
        tracing::warn!("live events: a notification that is not ours on {CHANNEL}");
        return;
    };
    for wire in wires {
        if wire.origin != hub.origin {
            hub.deliver(Arc::new(wire.event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::hub::Kind;

    #[test]
    fn payloads_stay_under_the_limit_and_keep_every_event() {
        let events: Vec<Arc<Event>> = (0..200)
            .map(|i| {
                Arc::new(Event {
                    battle_id: format!("battle-{i}"),
                    id: 1000 + i,
                    kind: Kind::Vote,
                    players: vec!["p".into()],
                    ladder: false,
                    owner: None,
                    data: serde_json::json!({"error": "x".repeat(100)}),
                })
            })
            .collect();
        let packed = payloads("me", &events);
        assert!(packed.len() > 1);
        let mut back = Vec::new();
        for p in &packed {
            assert!(p.len() < MAX_PAYLOAD, "{}", p.len());
            back.extend(serde_json::from_str::<Vec<Wire>>(p).unwrap());
        }
        assert_eq!(back.len(), events.len());
        assert!(
            back.iter()
                .zip(&events)
                .all(|(w, e)| w.event == **e && w.origin == "me")
        );
    }
}
