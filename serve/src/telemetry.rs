//! The metrics the accept loop records, and their descriptions.

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

/// Connections open right now, in all servers of the process.
pub const OPEN_CONNECTIONS: &str = "hero_http_open_connections";
/// Connections closed at once on accept, by `reason`: `total_cap` or `ip_cap`.
pub const CONNECTIONS_REFUSED: &str = "hero_http_connections_refused_total";

/// Describes the metrics above; call once at start-up, after installing the recorder.
pub fn describe_metrics() {
    describe_gauge!(
        OPEN_CONNECTIONS,
        Unit::Count,
        "HTTP connections open right now"
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        Unit::Count,
        "HTTP connections closed at once on accept, by reason: total_cap, ip_cap"
    );
}

/// Between drains of the histograms' raw samples.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts a thread that folds every histogram's recorded samples into its buckets every few
/// seconds. The Prometheus recorder keeps each sample until the next render: without a
/// scraper (or between scrapes) that is a few bytes per request and per battle, for ever.
pub fn keep_drained(handle: metrics_exporter_prometheus::PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the metrics upkeep thread; histograms drain only when /metrics is scraped");
    }
}

pub(crate) fn connection_opened() {
    gauge!(OPEN_CONNECTIONS).increment(1.0);
}

pub(crate) fn connection_closed() {
    gauge!(OPEN_CONNECTIONS).decrement(1.0);
}

pub(crate) fn connection_refused(reason: &'static str) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}
