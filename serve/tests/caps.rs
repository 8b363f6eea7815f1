//! Connection caps: a flood of idle connections from one address does not lock others out,
//! and the total cap closes extra connections until a slot is free again.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hero_serve::Limits;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use support::{
    PATIENCE, TestServer, closed_within, connect_from, get, is_closed_now, ok_router,
    read_response, send_get, try_get,
};

const FLOOD: usize = 2_000;
const PER_IP: usize = 256;
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_flood_from_one_address_does_not_starve_others() {
    let limits = Limits {
        // Fewer than the flood: without the per-address cap, the flood alone would fill the
        // server and lock everyone else out.
        max_connections: 1_000,
        max_connections_per_ip: PER_IP,
        // Long enough that no flood connection is closed for idling during the test.
        header_read_timeout: Duration::from_secs(60),
    };
    let server = TestServer::start(ok_router(), limits).await;

    // Open the flood, a few dozen connects at a time.
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD / 50 {
        let mut batch = JoinSet::new();
        for _ in 0..50 {
            batch.spawn(connect_from(FLOODER, server.addr));
        }
        while let Some(connected) = batch.join_next().await {
            flood.push(connected.unwrap().unwrap());
        }
    }

    // Someone else is still served.
    let response = get(server.addr, "/").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "ok");

    // All but the per-address cap are closed by the server.
    let deadline = Instant::now() + PATIENCE;
    let mut closed = vec![false; FLOOD];
    loop {
        for (stream, closed) in flood.iter().zip(closed.iter_mut()) {
            *closed = *closed || is_closed_now(stream);
        }
        let open = closed.iter().filter(|closed| !**closed).count();
        if open <= PER_IP {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} flood connections still open; the cap is {PER_IP}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The flooder's admitted connections are real connections.
    let (admitted, _) = flood
        .iter_mut()
        .zip(&closed)
        .find(|(_, closed)| !**closed)
        .expect("the server admitted none of the flood");
    send_get(admitted, "/", false).await;
    assert_eq!(read_response(admitted).await.status, 200);
}

#[tokio::test]
async fn total_cap_closes_extra_connections_and_frees_slots() {
    let limits = Limits {
        max_connections: 2,
        max_connections_per_ip: 100,
        header_read_timeout: Duration::from_secs(60),
    };
    let server = TestServer::start(ok_router(), limits).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    // Both are served (each request waits until the server took its connection).
    for stream in [&mut first, &mut second] {
        send_get(stream, "/", true).await;
        assert_eq!(read_response(stream).await.status, 200);
    }

    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        closed_within(&mut third, PATIENCE).await,
        "a connection over the total cap was kept open"
    );

    // A closed connection gives its slot back.
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    while try_get(server.addr, "/").await != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the closed connection's slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
