//! `GET /api/v1/ws`: one WebSocket for many subscriptions — battles by id, the player's own
//! battles (`mine`, after `auth`), the ladder's battles (`ladder`), every battle (`all`, admin
//! token). Messages are JSON text; see the README's "Live events" for the protocol.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::hub::{Event, Kind};
use super::snapshot::{self, Start};
use crate::auth::CurrentPlayer;
use crate::http::error::ApiResult;
use crate::state::AppState;

/// Messages waiting for one connection before it is dropped as too slow.
pub const CONNECTION_BUFFER: usize = 256;
/// Battles one connection may follow by id.
pub const MAX_BATTLES: usize = 64;
/// Largest message a client may send.
const MAX_MESSAGE_BYTES: usize = 4096;
/// Close code for a client that does not keep up (the private-use range).
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// Live events over a WebSocket.
///
/// Send `{"type":"auth","token":"..."}` (a player access token, or the admin token) when
/// needed, then `{"type":"subscribe","topic":"battle","battle_id":"...","after":N?}`,
/// `{"type":"subscribe","topic":"mine"}`, `{"type":"subscribe","topic":"ladder"}` or
/// `{"type":"subscribe","topic":"all"}` (admin); `unsubscribe` likewise. Events arrive as
/// `{"type":"event","event":"vote","id":N,"battle_id":"...","data":{...}}`; a battle
/// subscription starts with its `snapshot`. A client that does not keep up is closed with
/// code 4008.
#[utoipa::path(
    get, path = "/api/v1/ws", tag = "battles",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 503, description = "Too many live connections", body = crate::http::openapi::ErrorResponse),
    )
)]
pub async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let permit = state.events.admit()?;
    let token = crate::http::bearer::bearer(&headers).map(str::to_owned);
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            Session::new(state).run(socket, token).await;
        }))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Auth {
        token: String,
    },
    Subscribe {
        topic: Topic,
        #[serde(default)]
        battle_id: Option<String>,
        #[serde(default)]
        after: Option<u64>,
    },
    Unsubscribe {
        topic: Topic,
        #[serde(default)]
        battle_id: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Topic {
    Battle,
    Mine,
    Ladder,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Player(String),
    Admin,
}

struct Session {
    state: AppState,
    who: Option<Who>,
    /// Followed battles, with the last event id sent of each.
    battles: HashMap<String, u64>,
    mine: bool,
    ladder: bool,
    all: bool,
}

/// The connection cannot take more.
struct TooSlow;

fn event_message(event: &Event) -> Value {
    json!({
        "type": "event",
        "event": event.kind.as_str(),
        "id": event.id,
        "battle_id": event.battle_id,
        "data": event.data,
    })
}

impl Session {
    fn new(state: AppState) -> Self {
        Session {
            state,
            who: None,
            battles: HashMap::new(),
            mine: false,
            ladder: false,
            all: false,
        }
    }

    async fn run(mut self, socket: WebSocket, token: Option<String>) {
        let (mut sink, mut incoming) = socket.split();
        let (out, mut queue) = mpsc::channel::<Message>(CONNECTION_BUFFER);
        let kill = CancellationToken::new();
        let writer_kill = kill.clone();
        let writer = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = writer_kill.cancelled() => break,
                    m = queue.recv() => match m { Some(m) => m, None => break },
                };
                tokio::select! {
                    () = writer_kill.cancelled() => break,
                    sent = sink.send(message) => if sent.is_err() { return },
                }
            }
            let close = Message::Close(Some(CloseFrame {
                code: CLOSE_TOO_SLOW,
                reason: "too slow: reconnect and resume with \"after\"".into(),
            }));
            let reason = if writer_kill.is_cancelled() {
                Some(close)
            } else {
                None
            };
            if let Some(close) = reason {
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        });
        let mut live = self.state.events.hub.subscribe();
        let outcome = self.serve(&mut incoming, &mut live, &out, token).await;
        if outcome.is_err() {
            super::dropped("slow_client");
            kill.cancel();
        }
        drop(out);
        let _ = writer.await;
    }

    async fn serve(
        &mut self,
        incoming: &mut futures::stream::SplitStream<WebSocket>,
        live: &mut broadcast::Receiver<Arc<Event>>,
        out: &mpsc::Sender<Message>,
        token: Option<String>,
    ) -> Result<(), TooSlow> {
        if let Some(token) = token {
            let answer = self.authenticate(&token).await;
            send(out, &answer)?;
        }
        loop {
            tokio::select! {
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        for answer in self.handle(text.as_str()).await {
                            send(out, &answer)?;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        send(out, &error("send JSON text messages"))?;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(()),
                },
                received = live.recv() => match received {
                    Ok(event) => {
                        if self.wants(&event) {
                            send(out, &event_message(&event))?;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => return Err(TooSlow),
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    fn wants(&mut self, event: &Event) -> bool {
        if let Some(last) = self.battles.get_mut(&event.battle_id)
            && event.kind != Kind::Created
        {
            if event.id <= *last {
                return false;
            }
            *last = event.id;
            if event.kind == Kind::End {
                // The battle is over: its slot is free for another.
                self.battles.remove(&event.battle_id);
            }
            return true;
        }
        self.all
            || (self.ladder && event.ladder)
            || (self.mine
                && matches!(&self.who, Some(Who::Player(p)) if event.players.iter().any(|x| x == p)))
    }

    async fn authenticate(&mut self, token: &str) -> Value {
        if let Ok(Some(_name)) = crate::auth::admin::authenticate(&self.state, token).await {
            self.who = Some(Who::Admin);
            return json!({"type": "authenticated", "as": "admin"});
        }
        match CurrentPlayer::from_token(&self.state, token).await {
            Ok(player) => {
                self.who = Some(Who::Player(player.id.clone()));
                json!({"type": "authenticated", "as": "player", "player_id": player.id})
            }
            Err(e) => error(&e.to_string()),
        }
    }

    async fn handle(&mut self, text: &str) -> Vec<Value> {
        let request: Request = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => return vec![error(&format!("bad message: {e}"))],
        };
        match request {
            Request::Auth { token } => vec![self.authenticate(&token).await],
            Request::Subscribe {
                topic,
                battle_id,
                after,
            } => self.subscribe(topic, battle_id, after).await,
            Request::Unsubscribe { topic, battle_id } => {
                match topic {
                    Topic::Battle => {
                        if let Some(id) = &battle_id {
                            self.battles.remove(id);
                        }
                    }
                    Topic::Mine => self.mine = false,
                    Topic::Ladder => self.ladder = false,
                    Topic::All => self.all = false,
                }
                vec![
                    json!({"type": "unsubscribed", "topic": topic_name(topic), "battle_id": battle_id}),
                ]
            }
        }
    }

    async fn subscribe(
        &mut self,
        topic: Topic,
        battle_id: Option<String>,
        after: Option<u64>,
    ) -> Vec<Value> {
        let done =
            json!({"type": "subscribed", "topic": topic_name(topic), "battle_id": battle_id});
        match topic {
            Topic::Mine => {
                if !matches!(self.who, Some(Who::Player(_))) {
                    return vec![error(
                        "\"mine\" needs a player access token: send auth first",
                    )];
                }
                self.mine = true;
            }
            Topic::Ladder => self.ladder = true,
            Topic::All => {
                if self.who != Some(Who::Admin) {
                    return vec![error("\"all\" needs the admin token: send auth first")];
                }
                self.all = true;
            }
            Topic::Battle => {
                let Some(id) = battle_id else {
                    return vec![error("\"battle\" needs a battle_id")];
                };
                if !self.battles.contains_key(&id) && self.battles.len() >= MAX_BATTLES {
                    return vec![error(&format!(
                        "at most {MAX_BATTLES} battles per connection"
                    ))];
                }
                let start =
                    match snapshot::start(&self.state.events.hub, &self.state.db, &id, after).await
                    {
                        Ok(Some(start)) => start,
                        Ok(None) => return vec![error(&format!("no battle with id {id}"))],
                        Err(e) => {
                            tracing::warn!(error = %e, "live events: reading a battle failed");
                            return vec![error("the battle could not be read; try again")];
                        }
                    };
                let mut answers = vec![done];
                let mut last = after.unwrap_or(0);
                match start {
                    Start::Snapshot { view, id: at, .. } => {
                        last = at;
                        answers.push(json!({
                            "type": "event", "event": "snapshot", "id": at, "battle_id": id,
                            "data": serde_json::to_value(&*view).unwrap_or(Value::Null),
                        }));
                    }
                    Start::Missed(events) => {
                        for event in events {
                            last = last.max(event.id);
                            answers.push(event_message(&event));
                        }
                    }
                }
                self.battles.insert(id, last);
                return answers;
            }
        }
        vec![done]
    }
}

fn topic_name(topic: Topic) -> &'static str {
    match topic {
        Topic::Battle => "battle",
        Topic::Mine => "mine",
        Topic::Ladder => "ladder",
        Topic::All => "all",
    }
}

fn error(message: &str) -> Value {
    json!({"type": "error", "message": message})
}

/// Queues a message; a full queue means the client does not keep up.
fn send(out: &mpsc::Sender<Message>, value: &Value) -> Result<(), TooSlow> {
    out.try_send(Message::Text(value.to_string().into()))
        .map_err(|_| TooSlow)
}
