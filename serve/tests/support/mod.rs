//! A server under test on loopback, and a bare-bones HTTP/1.1 client over raw sockets (raw,
//! so tests can misbehave the way abusive clients do).
// `expect` would fail in whichever test binary happens to use every helper.
#![allow(
    dead_code,
    reason = "each test binary compiles this module and uses only part of it"
)]
#![expect(clippy::unwrap_used, reason = "a test harness fails loudly")]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use hero_serve::Limits;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound for things that should happen "soon"; only reached when a test fails.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// `hero_serve::serve` running on its own task.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<io::Result<()>>,
}

impl TestServer {
    pub async fn start(router: Router, limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hero_serve::serve(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Completes the `shutdown` future given to `serve`.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A router answering `GET /` with 200 "ok".
pub fn ok_router() -> Router {
    Router::new().route("/", axum::routing::get(|| async { "ok" }))
}

/// Limits with a header deadline of `header_read_timeout` and caps that tests will not reach.
pub fn limits_with_timeout(header_read_timeout: Duration) -> Limits {
    Limits {
        header_read_timeout,
        ..Limits::default()
    }
}

/// Connects to `addr` from the loopback address `from` (any of 127.0.0.0/8 works on Linux).
pub async fn connect_from(from: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// Sends `GET {path}`, keeping the connection alive or not.
pub async fn send_get(stream: &mut TcpStream, path: &str, keep_alive: bool) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: {connection}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-cased header lines, `name: value`.
    pub headers: Vec<String>,
    pub body: String,
}

/// Reads one response with a `Content-Length` body, leaving the connection open.
pub async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed before a full response head: {buf:?}"
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
    let length: usize = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside a response body");
        body.extend_from_slice(&chunk[..n]);
    }
    RawResponse {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

/// One `GET {path}` on a fresh connection from 127.0.0.1.
pub async fn get(addr: SocketAddr, path: &str) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    send_get(&mut stream, path, false).await;
    read_response(&mut stream).await
}

/// One `GET {path}` on a fresh connection from 127.0.0.1: the response status, or `None`
/// when the server closed the connection without answering.
pub async fn try_get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    // A reset after a refusal is as good as an end of file.
    let _ = stream.read_to_end(&mut buf).await;
    let head = String::from_utf8_lossy(&buf);
    head.split(' ').nth(1)?.parse().ok()
}

/// Whether the server closes `stream` within `within`: end of file or a reset. Bytes the
/// server sends first (such as an error response) are skipped.
pub async fn closed_within(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> bool {
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// Whether the server has already closed `stream`, without waiting.
pub fn is_closed_now(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
    }
}
