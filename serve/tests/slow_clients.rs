//! Slow clients are closed at the header deadline: silent connections, heads sent partly or
//! a byte at a time, and kept-alive connections left idle.

mod support;

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use support::{
    PATIENCE, TestServer, closed_within, limits_with_timeout, ok_router, read_response, send_get,
};

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);

async fn server() -> TestServer {
    TestServer::start(ok_router(), limits_with_timeout(HEADER_TIMEOUT)).await
}

/// Closed by the server, and not before the header deadline (so not refused on accept).
async fn assert_closed_at_deadline(stream: &mut TcpStream, started: Instant) {
    assert!(
        closed_within(stream, PATIENCE).await,
        "the server kept a slow connection open"
    );
    assert!(
        started.elapsed() >= HEADER_TIMEOUT,
        "closed before the header deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn silent_connection_is_closed_after_header_timeout() {
    let server = server().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_closed_at_deadline(&mut stream, started).await;
}

#[tokio::test]
async fn partial_head_is_closed_after_header_timeout() {
    let server = server().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_closed_at_deadline(&mut stream, started).await;
}

#[tokio::test]
async fn head_dripped_a_byte_at_a_time_is_closed_after_header_timeout() {
    // Slowloris: progress never stops, so a deadline reset by each byte would never fire.
    let server = server().await;
    let started = Instant::now();
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let drip = tokio::spawn(async move {
        if write
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Drip: ")
            .await
            .is_err()
        {
            return;
        }
        while write.write_all(b"a").await.is_ok() {
            tokio::time::sleep(HEADER_TIMEOUT / 10).await;
        }
    });
    let closed = closed_within(&mut read, PATIENCE).await;
    drip.abort();
    assert!(closed, "the server kept a dripping connection open");
    assert!(started.elapsed() >= HEADER_TIMEOUT);
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_header_timeout() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Two requests on one connection: it is kept alive after a response...
    for _ in 0..2 {
        send_get(&mut stream, "/", true).await;
        let response = read_response(&mut stream).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "ok");
    }
    // ...but not for ever once idle.
    assert!(
        closed_within(&mut stream, PATIENCE).await,
        "the server kept an idle connection open"
    );
}

/// An answer larger than the kernel's buffers on both ends can hold.
const LARGE_ANSWER_BYTES: usize = 32 * 1024 * 1024;

#[tokio::test]
async fn client_that_never_reads_its_answer_loses_its_connection() {
    // One place per address: the slot comes back only when the server drops the stalled
    // connection.
    let large = axum::body::Bytes::from(vec![b'x'; LARGE_ANSWER_BYTES]);
    let router = ok_router().route(
        "/large",
        axum::routing::get(move || {
            let large = large.clone();
            async move { large }
        }),
    );
    let limits = hero_serve::Limits {
        max_connections_per_ip: 1,
        ..limits_with_timeout(HEADER_TIMEOUT)
    };
    let server = TestServer::start(router, limits).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    send_get(&mut stalled, "/large", true).await;
    // Never read: the answer stalls in the buffers.
    let started = Instant::now();
    let freed = tokio::time::timeout(PATIENCE, async {
        loop {
            if support::try_get(server.addr, "/").await == Some(200) {
                return;
            }
            tokio::time::sleep(HEADER_TIMEOUT / 4).await;
        }
    })
    .await;
    assert!(
        freed.is_ok(),
        "a client that never reads kept its connection (and the address's only place)"
    );
    assert!(started.elapsed() >= HEADER_TIMEOUT);
    drop(stalled);
}
