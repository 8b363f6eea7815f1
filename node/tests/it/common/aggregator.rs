//! A tiny stand-in for the aggregator's node registry: the three endpoints a node calls,
//! recording every call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{delete, post};
use axum::{Json, Router};
use hero_protocol::{ErrorBody, Heartbeat, HeartbeatReply, NodeRegistration, RegistrationReply};

use super::Events;

#[derive(Debug, Clone)]
pub enum Call {
    Register {
        body: NodeRegistration,
        bearer: Option<String>,
        accepted: bool,
    },
    Heartbeat {
        body: Heartbeat,
        bearer: Option<String>,
        known: bool,
    },
    Deregister {
        node_id: String,
        bearer: Option<String>,
    },
}

#[derive(Clone)]
pub struct StandIn {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

struct Inner {
    enrollment_token: Option<String>,
    calls: Mutex<Vec<Call>>,
    /// node_id -> node_token of registered nodes.
    nodes: Mutex<HashMap<String, String>>,
    events: Events,
}

impl StandIn {
    /// Serves on `addr` (use port 0 for any) until the test ends.
    pub async fn start(addr: SocketAddr, enrollment_token: Option<&str>, events: Events) -> Self {
        let inner = Arc::new(Inner {
            enrollment_token: enrollment_token.map(str::to_string),
            calls: Mutex::default(),
            nodes: Mutex::default(),
            events,
        });
        let router = Router::new()
            .route("/api/nodes/register", post(register))
            .route("/api/nodes/heartbeat", post(heartbeat))
            .route("/api/nodes/{id}", delete(deregister))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    pub fn registrations(&self) -> Vec<NodeRegistration> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Register {
                    body,
                    accepted: true,
                    ..
                } => Some(body),
                _ => None,
            })
            .collect()
    }

    /// Heartbeats the stand-in knew the sender of.
    pub fn accepted_heartbeats(&self) -> Vec<(Heartbeat, Option<String>)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Heartbeat {
                    body,
                    bearer,
                    known: true,
                } => Some((body, bearer)),
                _ => None,
            })
            .collect()
    }

    pub fn deregistrations(&self) -> Vec<(String, Option<String>)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Deregister { node_id, bearer } => Some((node_id, bearer)),
                _ => None,
            })
            .collect()
    }

    /// The token issued to `node_id`, while it is registered.
    pub fn token_of(&self, node_id: &str) -> Option<String> {
        self.inner.nodes.lock().unwrap().get(node_id).cloned()
    }

    pub fn node_ids(&self) -> Vec<String> {
        self.inner.nodes.lock().unwrap().keys().cloned().collect()
    }

    /// Forgets every node, as after an aggregator database reset.
    pub fn forget_all(&self) {
        self.inner.nodes.lock().unwrap().clear();
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

type Reply<T> = Result<Json<T>, (StatusCode, Json<ErrorBody>)>;

async fn register(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<NodeRegistration>,
) -> Reply<RegistrationReply> {
    let bearer = bearer(&headers);
    let accepted = inner.enrollment_token.is_none() || inner.enrollment_token == bearer;
    let n = {
        let mut calls = inner.calls.lock().unwrap();
        calls.push(Call::Register {
            body,
            bearer,
            accepted,
        });
        calls.len()
    };
    if !accepted {
        let body = ErrorBody::new("unauthorized", "enrollment token rejected");
        return Err((StatusCode::UNAUTHORIZED, Json(body)));
    }
    let (node_id, node_token) = (format!("node-{n}"), format!("token-{n}"));
    inner
        .nodes
        .lock()
        .unwrap()
        .insert(node_id.clone(), node_token.clone());
    Ok(Json(RegistrationReply {
        node_id,
        node_token,
        heartbeat_interval_secs: 1,
    }))
}

async fn heartbeat(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<Heartbeat>,
) -> Reply<HeartbeatReply> {
    let bearer = bearer(&headers);
    let known = inner.nodes.lock().unwrap().get(&body.node_id) == bearer.as_ref();
    let known = known && bearer.is_some();
    inner.calls.lock().unwrap().push(Call::Heartbeat {
        body,
        bearer,
        known,
    });
    if !known {
        return Err((
            StatusCode::NOT_FOUND,
            Json(ErrorBody::new("not_found", "unknown node")),
        ));
    }
    Ok(Json(HeartbeatReply {
        status: "ok".into(),
        heartbeat_interval_secs: 1,
    }))
}

async fn deregister(
    State(inner): State<Arc<Inner>>,
    Path(node_id): Path<String>,
    headers: HeaderMap,
) -> StatusCode {
    let bearer = bearer(&headers);
    inner.events.push(format!("deregistered {node_id}"));
    inner.calls.lock().unwrap().push(Call::Deregister {
        node_id: node_id.clone(),
        bearer,
    });
    inner.nodes.lock().unwrap().remove(&node_id);
    StatusCode::NO_CONTENT
}
