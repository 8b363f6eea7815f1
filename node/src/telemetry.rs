//! Logs (tracing) and Prometheus metrics: the recorder is installed once per process.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::stats::Outcome;

pub const BATTLES_TOTAL: &str = "hero_node_battles_total";
const RESULTS_REPAIRED: &str = "hero_node_results_repaired_total";
pub const BATTLE_DURATION: &str = "hero_node_battle_duration_seconds";
pub const IN_FLIGHT: &str = "hero_node_in_flight";

const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Sets up tracing for the binary: `RUST_LOG` or `info`, text or JSON, on stderr (stdout
/// carries only the ready line).
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The process-wide Prometheus handle, installing the recorder on first use.
///
/// If another recorder is already installed (an embedding process with its own), node metrics
/// go to that one and this handle renders an empty page.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(BATTLE_DURATION.into()), DURATION_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::warn!(%error, "a metrics recorder is already installed; node metrics go there");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            describe();
            hero_serve::keep_drained(handle.clone());
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        BATTLES_TOTAL,
        "POST /generate_battle requests by result: ok, client_error, engine_error, capacity, unauthorized"
    );
    metrics::describe_histogram!(
        BATTLE_DURATION,
        metrics::Unit::Seconds,
        "Time the engine took to generate a battle"
    );
    metrics::describe_gauge!(IN_FLIGHT, "Battles being generated right now");
    metrics::describe_counter!(
        RESULTS_REPAIRED,
        "Battles the engine returned only after recomputing their hp, cutting the log at the knockout or naming the standing fighter"
    );
}

/// Brings the repaired-results counter up to the engine's count (read when scraped).
pub fn results_repaired(total: u64) {
    metrics::counter!(RESULTS_REPAIRED).absolute(total);
}

/// Counts one `POST /generate_battle` answer (for outcomes without a [`Meters`] at hand).
pub fn battle_counted(result: &'static str) {
    metrics::counter!(BATTLES_TOTAL, "result" => result).increment(1);
}

/// The battle metrics' handles, looked up once rather than in the registry on every request.
/// Made after [`prometheus`] installed the recorder, or they count into nothing.
#[derive(Clone)]
pub struct Meters {
    /// `hero_node_battles_total`, one per [`Outcome`], in [`Outcome::ALL`] order.
    battles: [Counter; Outcome::ALL.len()],
    duration: Histogram,
    pub in_flight: Gauge,
}

impl Meters {
    pub fn new() -> Self {
        Self {
            battles: Outcome::ALL
                .map(|outcome| metrics::counter!(BATTLES_TOTAL, "result" => outcome.label())),
            duration: metrics::histogram!(BATTLE_DURATION),
            in_flight: metrics::gauge!(IN_FLIGHT),
        }
    }

    /// Counts one `POST /generate_battle` answer.
    pub fn counted(&self, outcome: Outcome) {
        self.battles[outcome as usize].increment(1);
    }

    /// Records how long the engine took.
    pub fn timed(&self, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
    }
}

impl Default for Meters {
    fn default() -> Self {
        Self::new()
    }
}
