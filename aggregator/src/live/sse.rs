//! `GET /api/v1/battles/{id}/events`: one battle's events as Server-Sent Events, from a
//! snapshot (or the events missed since `Last-Event-ID`) to its `end`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, mpsc};

use super::snapshot::{self, Start};
use crate::db::Db;
use crate::events::hub::{Event, Kind};
use crate::http::ApiError;
use crate::http::error::ApiResult;
use crate::state::AppState;

/// Between looks at the battle in the database, in case its events were missed.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(5);
/// Events waiting for one slow connection before it is dropped.
pub const CONNECTION_BUFFER: usize = 64;

fn sse_of(event: &Event) -> SseEvent {
    SseEvent::default()
        .event(event.kind.as_str())
        .id(event.id.to_string())
        .data(event.data.to_string())
}

/// Live events of one battle (Server-Sent Events).
///
/// First a `snapshot` (the battle as `GET /api/v1/battles/{id}` shows it) — or, with a
/// `Last-Event-ID` this replica can still serve, the events missed since — then
/// `node_selected`, `vote` (who answered, valid or not), `verdict` (every vote's winner and
/// whether it agreed) as they happen, then `end` (close the stream: the browser would
/// reconnect). A battle already settled gives `snapshot` and `end`.
/// A client too slow to take its events is disconnected (reconnect with `Last-Event-ID`).
#[utoipa::path(
    get, path = "/api/v1/battles/{id}/events", tag = "battles",
    params(
        ("id" = String, Path, description = "Battle id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "text/event-stream of the battle's events", body = String, content_type = "text/event-stream"),
        (status = 404, description = "No such battle", body = crate::http::openapi::ErrorResponse),
        (status = 503, description = "Too many live connections", body = crate::http::openapi::ErrorResponse),
    )
)]
pub async fn battle_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let permit = state.events.admit()?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Subscribed before the snapshot is read, so nothing falls between the two.
    let live = state.events.hub.subscribe();
    let start = snapshot::start(&state.events.hub, &state.db, &id, after)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no battle with id {id}")))?;
    let (tx, rx) = mpsc::channel(CONNECTION_BUFFER);
    let db = state.db.clone();
    let stop = state.events.stop.clone();
    tokio::spawn(async move {
        let _permit = permit;
        tokio::select! {
            // Shutting down: the stream ends (the client reconnects to another replica).
            () = stop.cancelled() => {}
            () = forward(db, id, start, live, tx) => {}
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The messages that start (or restart) a stream, and the last id among them.
fn opening(battle_id: &str, start: Start) -> (Vec<SseEvent>, u64) {
    let mut last = 0;
    let messages = match start {
        Start::Snapshot { view, id, settled } => {
            last = id;
            let data = serde_json::to_string(&view).unwrap_or_default();
            let mut out = vec![
                SseEvent::default()
                    .event("snapshot")
                    .id(id.to_string())
                    .data(data),
            ];
            if settled {
                out.push(
                    SseEvent::default()
                        .event(Kind::End.as_str())
                        .id(id.to_string())
                        .data(serde_json::json!({"battle_id": battle_id}).to_string()),
                );
            }
            out
        }
        Start::Missed(events) => events
            .iter()
            .inspect(|e| last = last.max(e.id))
            .filter(|e| e.public())
            .map(|e| sse_of(e))
            .collect(),
    };
    (messages, last)
}

async fn forward(
    db: Db,
    battle_id: String,
    start: Start,
    mut live: broadcast::Receiver<Arc<Event>>,
    tx: mpsc::Sender<SseEvent>,
) {
    let ends = start.ends();
    let (first, mut last) = opening(&battle_id, start);
    for event in first {
        if tx.send(event).await.is_err() {
            return;
        }
    }
    if ends {
        return;
    }
    // Events of another replica can be missed (its listening connection dropped, or it
    // settled the battle before it knew anyone listened): now and then, look at the battle.
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    let mut quiet = true;
    loop {
        let event = tokio::select! {
            () = tx.closed() => return,
            _ = recheck.tick() => {
                // Only a stream that heard nothing for a whole interval looks.
                if !std::mem::replace(&mut quiet, true)
                    || !snapshot::settled(&db, &battle_id).await.unwrap_or(false)
                {
                    continue;
                }
                let Ok(Some(start)) = snapshot::start_fresh(&db, &battle_id).await else {
                    continue;
                };
                for message in opening(&battle_id, start).0 {
                    if tx.try_send(message).is_err() {
                        break;
                    }
                }
                return;
            }
            received = live.recv() => match received {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    crate::events::dropped("lagged");
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        // Already sent in the snapshot or the missed events; a player's own events.
        if event.battle_id != battle_id || event.id <= last || !event.public() {
            continue;
        }
        last = event.id;
        quiet = false;
        if tx.try_send(sse_of(&event)).is_err() {
            crate::events::dropped("slow_client");
            return;
        }
        if event.kind == Kind::End {
            return;
        }
    }
}
