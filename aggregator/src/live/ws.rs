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

use super::snapshot::{self, Start};
use crate::auth::CurrentPlayer;
use crate::events::hub::{Event, Kind};
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
/// Close code when the server shuts down (RFC 6455 "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// The server pings this often; a client silent for three pings is closed.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Followed battles that heard nothing for this long are looked up (their events may have
/// been missed). (The token is checked again every `--live-token-recheck-secs`.)
const RECHECK: Duration = Duration::from_secs(5);
/// Longest one message may take to leave before the client counts as too slow.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages a client may send per second (each may read the database); more closes it.
const MESSAGES_PER_SECOND: u32 = 20;
/// Close code for a client that sends too much (RFC 6455 "policy violation").
pub const CLOSE_POLICY: u16 = 1008;

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
        .max_frame_size(MAX_MESSAGE_BYTES)
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

struct Followed {
    last: u64,
    heard: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Player(String),
    Admin,
}

struct Session {
    state: AppState,
    who: Option<Who>,
    /// The player's token, checked again now and then (a logout ends `mine`).
    token: Option<String>,
    /// Followed battles, with the last event id sent of each and whether any came lately.
    battles: HashMap<String, Followed>,
    mine: bool,
    ladder: bool,
    all: bool,
}

/// The connection cannot take more.
struct TooSlow;

/// Messages received in the current second.
#[derive(Default)]
struct Budget {
    window: Option<tokio::time::Instant>,
    used: u32,
}

impl Budget {
    fn take(&mut self, now: tokio::time::Instant) -> bool {
        match self.window {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.used = 0;
            }
        }
        self.used += 1;
        self.used <= MESSAGES_PER_SECOND
    }
}

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
            token: None,
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
                    sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(message)) => match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        // A client that takes nothing for this long is too slow.
                        Err(_) => {
                            crate::events::dropped("slow_client");
                            writer_kill.cancel();
                            break;
                        }
                    },
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
        let stop = self.state.events.stop.clone();
        let outcome = tokio::select! {
            outcome = self.serve(&mut incoming, &mut live, &out, token) => outcome,
            // Shutting down: say so, and let the client reconnect to another replica.
            () = stop.cancelled() => {
                let _ = out.try_send(Message::Close(Some(CloseFrame {
                    code: CLOSE_GOING_AWAY,
                    reason: "the server is restarting".into(),
                })));
                Ok(())
            }
        };
        if outcome.is_err() {
            crate::events::dropped("slow_client");
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
        let every = |period| tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let (mut ping, mut recheck, mut reauth) = (
            every(PING_EVERY),
            every(RECHECK),
            every(self.state.events.token_recheck),
        );
        let mut heard = tokio::time::Instant::now();
        let mut budget = Budget::default();
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if heard.elapsed() > PING_EVERY * 3 {
                        return Ok(());
                    }
                    out.try_send(Message::Ping(Vec::new().into())).map_err(|_| TooSlow)?;
                }
                _ = recheck.tick() => {
                    for answer in self.recheck().await {
                        send(out, &answer)?;
                    }
                }
                _ = reauth.tick() => {
                    if let Some(answer) = self.reauthenticate().await {
                        send(out, &answer)?;
                    }
                }
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        heard = tokio::time::Instant::now();
                        if !budget.take(heard) {
                            crate::events::dropped("flooding");
                            let _ = out.try_send(Message::Close(Some(CloseFrame {
                                code: CLOSE_POLICY,
                                reason: "too many messages".into(),
                            })));
                            return Ok(());
                        }
                        for answer in self.handle(text.as_str()).await {
                            send(out, &answer)?;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        heard = tokio::time::Instant::now();
                        send(out, &error("send JSON text messages"))?;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => heard = tokio::time::Instant::now(),
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
        let mine =
            |who: &Option<Who>, player: &str| matches!(who, Some(Who::Player(p)) if p == player);
        let all = self.all && self.who == Some(Who::Admin);
        if let Some(owner) = &event.owner {
            // A player's own event: theirs and the admin's only.
            return all || (self.mine && mine(&self.who, owner));
        }
        if let Some(followed) = self.battles.get_mut(&event.battle_id)
            && event.kind != Kind::Created
        {
            if event.id <= followed.last {
                return false;
            }
            followed.last = event.id;
            followed.heard = true;
            if event.kind == Kind::End {
                // The battle is over: its slot is free for another.
                self.battles.remove(&event.battle_id);
            }
            return true;
        }
        all || (self.ladder && event.ladder)
            || (self.mine && event.players.iter().any(|p| mine(&self.who, p)))
    }

    /// Followed battles that heard nothing since the last look and are settled meanwhile
    /// (their events were missed): their snapshot and end.
    async fn recheck(&mut self) -> Vec<Value> {
        let mut quiet = Vec::new();
        for (id, followed) in &mut self.battles {
            if !std::mem::replace(&mut followed.heard, false) {
                quiet.push(id.clone());
            }
        }
        let mut answers = Vec::new();
        for id in quiet {
            if !snapshot::settled(&self.state.db, &id)
                .await
                .unwrap_or(false)
            {
                continue;
            }
            if let Ok(Some(start)) = snapshot::start_fresh(&self.state.db, &id).await {
                answers.extend(opening(&id, start));
                self.battles.remove(&id);
            }
        }
        answers
    }

    /// A player whose session ended (logout, expiry) stops getting `mine`; an admin whose
    /// token was revoked stops getting `all`.
    async fn reauthenticate(&mut self) -> Option<Value> {
        let token = self.token.clone()?;
        let (still, ended) = match self.who {
            Some(Who::Admin) => match crate::auth::admin::authenticate(&self.state, &token).await {
                Ok(name) => (
                    name.is_some(),
                    "the admin token was revoked: \"all\" stopped",
                ),
                // A database hiccup is not a revocation: checked again next time.
                Err(e) => {
                    tracing::warn!(error = %e, "re-checking an admin's WebSocket failed");
                    (true, "")
                }
            },
            _ => (
                CurrentPlayer::from_token(&self.state, &token).await.is_ok(),
                "the session ended: \"mine\" stopped; send auth with a new token",
            ),
        };
        if still {
            return None;
        }
        self.who = None;
        self.token = None;
        self.mine = false;
        self.all = false;
        Some(error(ended))
    }

    async fn authenticate(&mut self, token: &str) -> Value {
        if let Ok(Some(_name)) = crate::auth::admin::authenticate(&self.state, token).await {
            self.assume(Who::Admin, token);
            return json!({"type": "authenticated", "as": "admin"});
        }
        match CurrentPlayer::from_token(&self.state, token).await {
            Ok(player) => {
                self.assume(Who::Player(player.id.clone()), token);
                json!({"type": "authenticated", "as": "player", "player_id": player.id})
            }
            Err(e) => error(&e.to_string()),
        }
    }

    /// Takes `who`'s identity under `token`. Another identity starts with no private topic:
    /// an admin's `all` is not kept by a socket that then authenticates as a player (whose
    /// token is re-checked as a player's, not an admin's).
    fn assume(&mut self, who: Who, token: &str) {
        if self.who.as_ref() != Some(&who) {
            self.all = false;
            self.mine = false;
        }
        self.who = Some(who);
        self.token = Some(token.to_owned());
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
                let ends = start.ends();
                let last = match &start {
                    Start::Snapshot { id: at, .. } => *at,
                    Start::Missed(events) => events
                        .iter()
                        .map(|e| e.id)
                        .max()
                        .unwrap_or(after.unwrap_or(0)),
                };
                answers.extend(opening(&id, start));
                if ends {
                    // Nothing more will come: no slot taken.
                    return answers;
                }
                self.battles.insert(id, Followed { last, heard: false });
                return answers;
            }
        }
        vec![done]
    }
}

/// The messages that start following a battle: its snapshot (and `end` when it is settled),
/// or the events missed since `after`.
fn opening(battle_id: &str, start: Start) -> Vec<Value> {
    match start {
        Start::Snapshot { view, id, settled } => {
            let mut out = vec![json!({
                "type": "event", "event": "snapshot", "id": id, "battle_id": battle_id,
                "data": serde_json::to_value(&*view).unwrap_or(Value::Null),
            })];
            if settled {
                out.push(json!({
                    "type": "event", "event": Kind::End.as_str(), "id": id, "battle_id": battle_id,
                    "data": {"battle_id": battle_id},
                }));
            }
            out
        }
        Start::Missed(events) => events
            .iter()
            .filter(|e| e.public())
            .map(|e| event_message(e))
            .collect(),
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
