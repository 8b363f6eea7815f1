//! Prometheus metrics: the recorder, the names we export, and the per-route HTTP middleware.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "hero_http_requests_total";
pub const HTTP_DURATION: &str = "hero_http_request_duration_seconds";
pub const BATTLES_SETTLED: &str = "hero_battles_settled_total";
pub const VOTES: &str = "hero_votes_total";
pub const NODE_REQUESTS: &str = "hero_node_requests_total";
pub const NODE_REQUEST_DURATION: &str = "hero_node_request_duration_seconds";
pub const SETTLE_DURATION: &str = "hero_battle_settle_duration_seconds";
pub const QUORUM_SIZE: &str = "hero_quorum_size";
pub const DB_POOL_CONNECTIONS: &str = "hero_db_pool_connections";
pub const DB_POOL_MAX: &str = "hero_db_pool_max_connections";
pub const EVENTS_DROPPED: &str = "hero_live_events_dropped_total";
pub const NODES_ONLINE: &str = "hero_nodes_online";
pub const IP_RATE_LIMITED: &str = "hero_ip_rate_limited_total";
pub const RATE_LIMIT_REDIS_ERRORS: &str = "hero_rate_limit_redis_errors_total";
pub const ADMIN_ACTIONS: &str = "hero_admin_actions_total";
pub const REGISTRATIONS_REFUSED: &str = "hero_node_registrations_refused_total";
pub const URLS_RECLAIMED: &str = "hero_node_urls_reclaimed_total";
pub const CONSENSUS_OVERHEAD: &str = "hero_consensus_overhead_seconds";
pub const HEDGES: &str = "hero_node_hedges_total";
pub const HEAP_BYTES: &str = "hero_heap_bytes";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and describes every metric.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ])
                .and_then(|b| {
                    // Sub-millisecond: the aggregator's own share of a settlement.
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(CONSENSUS_OVERHEAD.into()),
                        &[
                            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                            0.25, 1.0,
                        ],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another library in the process (an embedded node) may have installed one first.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("a metrics recorder was already installed");
            }
            describe();
            hero_serve::keep_drained(handle.clone());
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    hero_serve::describe_metrics();
    describe_counter!(
        IP_RATE_LIMITED,
        "Requests refused with 429 by the per-address limits, by kind"
    );
    describe_counter!(
        RATE_LIMIT_REDIS_ERRORS,
        "Rate-limit checks Redis failed to answer (counted in this process instead)"
    );
    describe_counter!(
        ADMIN_ACTIONS,
        "Admin actions on operators and nodes (security events), by action"
    );
    describe_histogram!(
        CONSENSUS_OVERHEAD,
        "Time from the vote that made a quorum to its verdict being written"
    );
    describe_counter!(
        HEDGES,
        "Backup nodes asked for a slow node's seat, by who took the seat: backup, slow, none"
    );
    describe_counter!(
        REGISTRATIONS_REFUSED,
        "Node registrations refused, by reason: token, signature, takeover, limit, invalid"
    );
    describe_counter!(
        URLS_RECLAIMED,
        "Node URLs given back to the key their /health presents (whoever held them left)"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, matched route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        "HTTP request duration by method and matched route"
    );
    describe_counter!(
        BATTLES_SETTLED,
        "Battles settled, by outcome: quorum, fallback, error"
    );
    describe_counter!(VOTES, "Node votes recorded, by validity: valid, invalid");
    describe_counter!(
        NODE_REQUESTS,
        "Calls to nodes by result: ok, invalid, unsigned, http_error, timeout, unreachable, malformed"
    );
    describe_histogram!(NODE_REQUEST_DURATION, "Duration of calls to nodes");
    describe_histogram!(
        SETTLE_DURATION,
        "From claiming a battle to writing its verdict"
    );
    describe_gauge!(NODES_ONLINE, "Nodes whose last heartbeat is recent");
    describe_gauge!(
        QUORUM_SIZE,
        "The configured quorum size k (nodes asked per battle)"
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Database connections by pool (main; writer on SQLite) and state: in_use, idle"
    );
    describe_gauge!(DB_POOL_MAX, "Most connections each database pool may open");
    describe_gauge!(
        HEAP_BYTES,
        "The allocator's memory (jemalloc): allocated (in use by the program), resident (held in RAM, freed memory not yet returned included)"
    );
}

/// Sets the heap gauges from jemalloc's statistics (called on each scrape). `hero-aggregator`
/// allocates with jemalloc; a test binary links it without allocating through it (near-zero
/// figures), and other platforms have no gauges.
pub fn observe_heap() {
    #[cfg(all(target_os = "linux", not(target_env = "musl")))]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The statistics are cached until the epoch moves.
        if epoch::advance().is_err() {
            return;
        }
        for (state, read) in [
            (
                "allocated",
                stats::allocated::read as fn() -> tikv_jemalloc_ctl::Result<usize>,
            ),
            ("resident", stats::resident::read),
        ] {
            if let Ok(bytes) = read() {
                metrics::gauge!(HEAP_BYTES, "state" => state).set(bytes as f64);
            }
        }
    }
}

/// Sets the database pool gauges from the pools as they are now (called on each scrape).
pub fn observe_pools(db: &crate::db::Db) {
    let mut pools = vec![("main", &db.pool)];
    if db.dialect == crate::db::Dialect::Sqlite {
        pools.push(("writer", &db.writer));
    }
    for (name, pool) in pools {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        metrics::gauge!(DB_POOL_CONNECTIONS, "pool" => name, "state" => "in_use")
            .set(f64::from(size - idle));
        metrics::gauge!(DB_POOL_CONNECTIONS, "pool" => name, "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!(DB_POOL_MAX, "pool" => name)
            .set(f64::from(pool.options().get_max_connections()));
    }
}

/// Counts and times every request by its matched route (never the raw path).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method()).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a metric label: the standard ones by name, any other as `other`, so clients
/// inventing methods cannot add series (each one is memory kept for the process's life).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        for invented in ["FOO", "BREW", "X-0001"] {
            let method = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other");
        }
    }
}
