//! What handlers see and how the server stops: `ConnectInfo`, graceful shutdown.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use hero_serve::Limits;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use support::{
    PATIENCE, TestServer, closed_within, connect_from, limits_with_timeout, ok_router,
    read_response, send_get,
};

#[tokio::test]
async fn handler_sees_the_peer_address_as_connect_info() {
    let router = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let server = TestServer::start(router, Limits::default()).await;
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let mut stream = connect_from(from, server.addr).await.unwrap();
    let client = stream.local_addr().unwrap();
    send_get(&mut stream, "/peer", false).await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, client.to_string());
}

#[tokio::test]
async fn oversized_head_gets_431_and_is_closed() {
    let server = TestServer::start(ok_router(), Limits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // More than twice our 64 KiB limit (hyper may overshoot it up to that), but less than
    // hyper's own default, so only our limit refuses it.
    let padding = "a".repeat(256 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: test\r\nX-Padding: {padding}\r\n\r\n");
    // The server may close before all of it is written.
    let _ = stream.write_all(request.as_bytes()).await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 431);
    assert!(closed_within(&mut stream, PATIENCE).await);
}

#[tokio::test]
async fn graceful_shutdown_lets_a_slow_request_finish_then_returns() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let router = ok_router().route(
        "/slow",
        get({
            let (started, release) = (Arc::clone(&started), Arc::clone(&release));
            move || async move {
                started.notify_one();
                release.notified().await;
                "done"
            }
        }),
    );
    // A long header deadline, so only the shutdown can close the idle connection.
    let mut server = TestServer::start(router, limits_with_timeout(Duration::from_secs(60))).await;

    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    send_get(&mut idle, "/", true).await;
    assert_eq!(read_response(&mut idle).await.status, 200);

    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    send_get(&mut slow, "/slow", true).await;
    started.notified().await;

    server.shut_down();

    assert!(
        closed_within(&mut idle, PATIENCE).await,
        "an idle kept-alive connection was not closed on shutdown"
    );
    // The listener is closed: new connections are refused.
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(server.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !server.task.is_finished(),
        "serve returned with a request in flight"
    );

    release.notify_one();
    let response = read_response(&mut slow).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "done");
    assert!(
        response.headers.iter().any(|h| h == "connection: close"),
        "the last response should announce the close: {:?}",
        response.headers
    );
    let served = tokio::time::timeout(PATIENCE, &mut server.task)
        .await
        .expect("serve did not return after draining");
    served.unwrap().unwrap();
}

#[tokio::test]
async fn serve_future_can_be_spawned() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serve = hero_serve::serve(listener, Router::new(), Limits::default(), async {});
    assert_send(&serve);
    // With `shutdown` already complete, serve stops at once.
    tokio::time::timeout(PATIENCE, serve)
        .await
        .expect("serve did not stop")
        .unwrap();
}
