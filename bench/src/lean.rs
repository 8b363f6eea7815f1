//! The lean load client: one HTTP/1.1 keep-alive connection per task straight on hyper (no
//! pool, no redirects, no decompression), so the client takes as little of the two shared
//! cores as it can; and [`drive`], which runs a [`Plan`] of requests over such connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::body::Body as _;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode};

/// One connection to one server.
pub struct Conn {
    addr: SocketAddr,
    sender: SendRequest<String>,
}

/// A whole answer: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "{}: not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The JSON body of a 2xx answer; an error naming the status and body otherwise.
    pub fn ok_json(&self) -> anyhow::Result<serde_json::Value> {
        anyhow::ensure!(
            self.status.is_success(),
            "{}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { addr, sender })
    }

    pub async fn send(&mut self, request: Request<String>) -> anyhow::Result<Answer> {
        self.sender.ready().await?;
        let (parts, mut body) = self.sender.send_request(request).await?.into_parts();
        let mut bytes = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame?.into_data() {
                bytes.extend_from_slice(&data);
            }
        }
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: bytes,
        })
    }

    /// A fresh connection to the same server (after the old one failed).
    async fn reopen(&mut self) -> anyhow::Result<()> {
        *self = Conn::open(self.addr).await?;
        Ok(())
    }
}

/// A request to `path`, with a bearer token and a JSON body when given.
pub fn request(
    method: Method,
    path: &str,
    bearer: Option<&str>,
    json: Option<String>,
) -> anyhow::Result<Request<String>> {
    let has_body = json.is_some();
    let mut request = Request::new(json.unwrap_or_default());
    *request.method_mut() = method;
    *request.uri_mut() = path.parse()?;
    let headers = request.headers_mut();
    headers.insert(HOST, HeaderValue::from_static("127.0.0.1"));
    if has_body {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(token) = bearer {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    Ok(request)
}

/// Adds a header to a request.
pub fn with_header(
    mut request: Request<String>,
    name: &'static str,
    value: &str,
) -> anyhow::Result<Request<String>> {
    request
        .headers_mut()
        .insert(HeaderName::from_static(name), HeaderValue::from_str(value)?);
    Ok(request)
}

/// One request on a connection of its own (set-up calls, scrapes).
pub async fn call(addr: SocketAddr, request: Request<String>) -> anyhow::Result<Answer> {
    Conn::open(addr).await?.send(request).await
}

/// A GET on a connection of its own; the JSON of a 2xx answer.
pub async fn get_json(addr: SocketAddr, path: &str) -> anyhow::Result<serde_json::Value> {
    call(addr, request(Method::GET, path, None, None)?)
        .await?
        .ok_json()
}

/// How requests are sent: over how many connections, how many or for how long, how fast.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    /// Requests in all; unbounded when `None` (then `duration` ends the run).
    pub total: Option<u64>,
    pub duration: Option<Duration>,
    /// Requests per second in all, request `i` due at `i / rate`; as fast as answers come back
    /// when `None`.
    pub rate: Option<f64>,
    /// Keep every answer (for set-up calls whose answers are needed), not only its status.
    pub keep_answers: bool,
}

impl Plan {
    /// `total` requests over `connections`, as fast as they go.
    pub fn count(total: u64, connections: usize) -> Plan {
        Plan {
            connections,
            total: Some(total),
            duration: None,
            rate: None,
            keep_answers: false,
        }
    }

    /// Requests for `duration` over `connections`, as fast as they go.
    pub fn timed(duration: Duration, connections: usize) -> Plan {
        Plan {
            total: None,
            duration: Some(duration),
            ..Plan::count(0, connections)
        }
    }

    pub fn paced(self, rate: f64) -> Plan {
        Plan {
            rate: Some(rate),
            ..self
        }
    }

    pub fn keeping_answers(self) -> Plan {
        Plan {
            keep_answers: true,
            ..self
        }
    }
}

/// What a run of requests got back.
#[derive(Debug, Default)]
pub struct Tally {
    /// Answers by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection errors).
    pub failures: u64,
    /// Each answered request's time, send to last body byte.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    /// With `keep_answers`: each answer with the index of its request.
    pub answers: Vec<(u64, Answer)>,
}

impl Tally {
    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }

    pub fn with_status(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Answers per second over the run.
    pub fn rate(&self) -> f64 {
        self.answered() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Statuses as `202×1,000 429×3`, and the failures.
    pub fn statuses_text(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}×{}", crate::report::thousands(*n as f64)))
            .collect();
        if self.failures > 0 {
            parts.push(format!("{} without answer", self.failures));
        }
        parts.join(" ")
    }

    /// Every answer was `status` and none is missing.
    pub fn all(&self, status: u16) -> bool {
        self.failures == 0 && self.with_status(status) == self.answered()
    }

    fn merge(&mut self, other: Tally) {
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.failures += other.failures;
        self.latencies.extend(other.latencies);
        self.answers.extend(other.answers);
    }
}

/// Sends the requests `make(i)` (i = 0, 1, 2, ...) to `addr` as `plan` says; a connection that
/// fails is opened again.
pub async fn drive<F>(addr: SocketAddr, plan: Plan, make: F) -> anyhow::Result<Tally>
where
    F: Fn(u64) -> anyhow::Result<Request<String>> + Send + Sync + 'static,
{
    anyhow::ensure!(plan.connections > 0, "a plan needs at least one connection");
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let (make, next) = (Arc::clone(&make), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if plan.total.is_some_and(|total| i >= total)
                    || plan.duration.is_some_and(|d| started.elapsed() >= d)
                {
                    break;
                }
                if let Some(rate) = plan.rate {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    if plan.duration.is_some_and(|d| due > started + d) {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                let request = make(i)?;
                let sent = Instant::now();
                match conn.send(request).await {
                    Ok(answer) => {
                        tally.latencies.push(sent.elapsed());
                        *tally.statuses.entry(answer.status.as_u16()).or_default() += 1;
                        if plan.keep_answers {
                            tally.answers.push((i, answer));
                        }
                    }
                    Err(_) => {
                        tally.failures += 1;
                        conn.reopen().await?;
                    }
                }
            }
            anyhow::Ok(tally)
        }));
    }
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await??);
    }
    tally.elapsed = started.elapsed();
    tally.answers.sort_by_key(|(i, _)| *i);
    Ok(tally)
}
