//! The connection metrics, read back through a Prometheus recorder (its own test binary,
//! because the recorder is process-wide).

mod support;

use std::time::{Duration, Instant};

use hero_serve::Limits;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpStream;

use support::{PATIENCE, TestServer, closed_within, ok_router, read_response, send_get};

const OPEN: &str = "hero_http_open_connections";
const REFUSED_TOTAL: &str = "hero_http_connections_refused_total{reason=\"total_cap\"}";
const REFUSED_IP: &str = "hero_http_connections_refused_total{reason=\"ip_cap\"}";

/// The value of one series in the rendered exposition.
fn value(handle: &PrometheusHandle, series: &str) -> Option<f64> {
    handle.render().lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

async fn served_connection(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr)
        .await
        .expect("the server accepts connections");
    send_get(&mut stream, "/", true).await;
    assert_eq!(read_response(&mut stream).await.status, 200);
    stream
}

async fn wait_for(handle: &PrometheusHandle, series: &str, expected: f64) {
    let deadline = Instant::now() + PATIENCE;
    while value(handle, series) != Some(expected) {
        assert!(
            Instant::now() < deadline,
            "{series} is {:?}, expected {expected}",
            value(handle, series)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn open_and_refused_connections_are_counted() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    hero_serve::describe_metrics();

    let long = Duration::from_secs(60);
    let total_capped = TestServer::start(
        ok_router(),
        Limits {
            max_connections: 1,
            max_connections_per_ip: 10,
            header_read_timeout: long,
        },
    )
    .await;
    let ip_capped = TestServer::start(
        ok_router(),
        Limits {
            max_connections: 10,
            max_connections_per_ip: 1,
            header_read_timeout: long,
        },
    )
    .await;

    let first = served_connection(&total_capped).await;
    let second = served_connection(&ip_capped).await;
    assert_eq!(value(&handle, OPEN), Some(2.0));

    let mut refused = TcpStream::connect(total_capped.addr).await.unwrap();
    assert!(closed_within(&mut refused, PATIENCE).await);
    wait_for(&handle, REFUSED_TOTAL, 1.0).await;
    let mut refused = TcpStream::connect(ip_capped.addr).await.unwrap();
    assert!(closed_within(&mut refused, PATIENCE).await);
    wait_for(&handle, REFUSED_IP, 1.0).await;

    drop((first, second));
    wait_for(&handle, OPEN, 0.0).await;

    let rendered = handle.render();
    for name in [
        "hero_http_open_connections",
        "hero_http_connections_refused_total",
    ] {
        assert!(
            rendered.contains(&format!("# HELP {name} ")),
            "{name} is not described:\n{rendered}"
        );
    }
}
