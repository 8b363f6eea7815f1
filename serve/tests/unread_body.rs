//! Answers given before the request body was read say `Connection: close`, so a pooled client
//! never sends its next request on a connection the server is closing; answers after a body
//! read to its end, and to requests without a body, keep the connection alive.

mod support;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use hero_serve::Limits;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use support::{PATIENCE, TestServer, closed_within, read_response};

/// `/refuse` answers 401 without looking at the body; `/echo` reads it and says its length.
fn router() -> Router {
    Router::new()
        .route("/refuse", post(|| async { StatusCode::UNAUTHORIZED }))
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .layer(axum::middleware::from_fn(hero_serve::close_if_body_unread))
}

async fn send_post(stream: &mut TcpStream, path: &str, length: usize, body: &[u8]) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    stream.write_all(body).await.expect("send the body");
}

fn says_close(headers: &[String]) -> bool {
    headers.iter().any(|h| h == "connection: close")
}

#[tokio::test]
async fn an_answer_before_the_body_arrived_says_the_connection_closes() {
    let server = TestServer::start(router(), Limits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // The head only: the body is still on its way when the handler answers.
    send_post(&mut stream, "/refuse", 1000, b"").await;
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 401);
    assert!(says_close(&response.headers), "{:?}", response.headers);
    assert!(closed_within(&mut stream, PATIENCE).await);
}

#[tokio::test]
async fn an_answer_after_reading_the_body_keeps_the_connection() {
    let server = TestServer::start(router(), Limits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        // Head and body in separate writes, as urllib3 sends them.
        send_post(&mut stream, "/echo", 5, b"").await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stream.write_all(b"hello").await.unwrap();
        let response = read_response(&mut stream).await;
        assert_eq!((response.status, response.body.as_str()), (200, "5"));
        assert!(!says_close(&response.headers), "{:?}", response.headers);
    }
}

#[tokio::test]
async fn an_answer_to_a_request_without_a_body_keeps_the_connection() {
    let server = TestServer::start(router(), Limits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        send_post(&mut stream, "/refuse", 0, b"").await;
        let response = read_response(&mut stream).await;
        assert_eq!(response.status, 401);
        assert!(!says_close(&response.headers), "{:?}", response.headers);
    }
}
