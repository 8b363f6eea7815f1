//! The accept loop: caps connections, serves each over HTTP/1.1 with a header deadline, and
//! drains on shutdown.
//!
//! # When hyper's `header_read_timeout` runs (read in hyper 1.12 `src/proto/h1/conn.rs`)
//!
//! `Conn::poll_read_head` arms the timer whenever it is entered with no timer running, and
//! the dispatcher enters it whenever the connection is ready for a new request head
//! (`Reading::Init`; a server reads first, so also before anything else happens). The timer
//! is only cleared once a *complete* head has been parsed; bytes arriving do not reset it.
//! When it fires, the connection future fails with a header-timeout error, we drop it and
//! the socket closes. Hence, as long as the connection future is polled at once after
//! accept (it is: we spawn it straight away):
//!
//! - a connection that never sends a byte: armed on the first poll, closed after the timeout;
//! - a head sent slowly or partly (slowloris, even one byte at a time): the timer keeps
//!   running from the first poll and is not reset by progress, so it is closed after the
//!   timeout counted from when the head began to be awaited;
//! - a kept-alive connection idling between requests: after a response, `State::idle` puts
//!   reading back to `Init` and sets `notify_read` when a header timeout is configured, so
//!   the dispatcher re-enters `poll_read_head` and re-arms the timer at once.
//!
//! So hyper covers all three; `tests/slow_clients.rs` checks each case. Not covered by this
//! timer: a request body sent slowly (a request timeout layer in the router covers that) and
//! a client that stops reading what we write (the timer only runs while waiting for a head).
//! The second is ours: [`Guarded`] fails a write that has made no progress for the header
//! deadline, so the connection closes. Without it, a client pipelining requests for a large
//! answer and never reading kept its place in the caps, and megabytes of kernel send buffer,
//! for as long as it liked (TCP's zero-window probes keep such a connection alive).

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service as _;

use crate::Limits;
use crate::caps::{ConnectionCaps, ConnectionGuard};
use crate::telemetry;

/// Most bytes hyper buffers for one connection's reads, and so for a request head. hyper's
/// default is ~400 KiB, which a few thousand slow clients could turn into gigabytes; nginx
/// allows 32 KiB of headers by default. hyper checks the limit between reads, and a read may
/// fill the buffer's spare capacity, so a head of up to about twice this can still get
/// through; a larger one gets 431 and the connection is closed.
const MAX_BUFFER_BYTES: usize = 64 * 1024;

/// How long to wait before accepting again after an error such as "too many open files".
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets
/// requests in progress finish (graceful), and returns.
///
/// Connections over a cap in `limits` are accepted and closed at once. Every request carries
/// [`ConnectInfo<SocketAddr>`] with the peer address. Errors accepting a connection (such as
/// running out of file descriptors) are logged and do not end the loop, so this returns
/// `Ok(())` once drained; the `io::Result` leaves room for errors setting up the listener.
///
/// Connections idle or still sending their head when `shutdown` completes are closed at
/// once or at their header deadline; the wait for slow handlers is not bounded here, so
/// wrap the call in a timeout if the process must exit by a deadline.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let caps = ConnectionCaps::new(&limits);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUFFER_BYTES)
        .keep_alive(true);
    let graceful = Graceful::default();
    let mut shutdown = pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_connection_error(&error) => {
                // The peer gave up before we got to it; nothing to do.
                tracing::debug!(%error, "connection failed before it was accepted");
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "accepting a connection failed; retrying shortly");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        match caps.admit(peer.ip()) {
            Ok(guard) => {
                let guarded = Guarded::new(stream, guard, limits.header_read_timeout);
                spawn_connection(guarded, peer, &router, &http, &graceful);
            }
            Err(refusal) => {
                tracing::debug!(%peer, reason = refusal.label(), "connection refused");
                telemetry::connection_refused(refusal.label());
                drop(stream);
            }
        }
    }

    drop(listener);
    tracing::debug!(
        connections = graceful.connections.len(),
        "stopped accepting; draining open connections"
    );
    graceful.stop.cancel();
    graceful.connections.close();
    graceful.connections.wait().await;
    Ok(())
}

/// Serves one admitted connection on its own task; its guard frees its slot when it ends.
fn spawn_connection(
    stream: Guarded,
    peer: SocketAddr,
    router: &Router,
    http: &http1::Builder,
    graceful: &Graceful,
) {
    if let Err(error) = stream.stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
    }
    let router = router.clone();
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        // A `Router` clone is a reference count; axum's own `serve` clones it per request too.
        router.clone().call(request)
    });
    // With upgrades: a WebSocket takes the connection over once its handshake is answered.
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let stop = graceful.stop.clone();
    graceful.connections.spawn(async move {
        let mut connection = pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => ended,
            () = stop.cancelled() => {
                // Requests in progress finish; idle keep-alive connections close.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = ended {
            // Header timeouts, clients that hang up mid-request, reset connections.
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    });
}

/// The socket with its place in the connection caps: the place is held as long as the
/// socket is open, also after a WebSocket upgrade takes it over from HTTP. A write that makes
/// no progress for `write_stall` (the peer stopped reading) fails with `TimedOut`, which ends
/// the connection.
struct Guarded {
    stream: TcpStream,
    #[expect(dead_code, reason = "held for its Drop, which frees the place")]
    guard: ConnectionGuard,
    write_stall: Duration,
    /// Armed when a write first finds the socket full; disarmed by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Guarded {
    fn new(stream: TcpStream, guard: ConnectionGuard, write_stall: Duration) -> Self {
        Self {
            stream,
            guard,
            write_stall,
            stalled: None,
        }
    }

    /// Passes a write's outcome on, timing how long the socket stays full: `Pending` arms
    /// the deadline (and registers its wake-up), progress or an error disarms it, and a
    /// deadline passed turns `Pending` into `TimedOut`.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let write_stall = self.write_stall;
        let deadline = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(write_stall)));
        ready!(deadline.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing of the answer for the write deadline",
        )))
    }
}

impl tokio::io::AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The open connections, and the signal that tells them to finish.
#[derive(Default)]
struct Graceful {
    stop: CancellationToken,
    connections: TaskTracker,
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
