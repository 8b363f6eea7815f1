//! Summaries of timing samples, and the in-memory selection benchmark.

use std::time::{Duration, Instant};

use hero_aggregator::nodes::{NodeEntry, NodeRegistry};

pub struct Summary {
    sorted: Vec<Duration>,
}

impl Summary {
    pub fn of(mut samples: Vec<Duration>) -> Summary {
        samples.sort();
        Summary { sorted: samples }
    }

    fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.sorted.len() as f64 - 1.0) * p).round() as usize;
        self.sorted[i.min(self.sorted.len() - 1)]
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sub-millisecond figures in microseconds, the rest in milliseconds.
        let (unit, scale) = if self.pct(0.99) < Duration::from_millis(1) {
            ("µs", 1e6)
        } else {
            ("ms", 1e3)
        };
        let v = |p: f64| self.pct(p).as_secs_f64() * scale;
        write!(
            f,
            "p50 {:.2} {unit}, p90 {:.2} {unit}, p99 {:.2} {unit}, max {:.2} {unit}",
            v(0.5),
            v(0.9),
            v(0.99),
            v(1.0)
        )
    }
}

/// Times `NodeRegistry::assign(3, ...)` over `size` online nodes (the max includes the
/// periodic rebuild of the sampling index).
pub fn selection(size: usize) -> String {
    let registry = NodeRegistry::new();
    let now = 1_000_000;
    for i in 0..size {
        registry.upsert(NodeEntry::new(
            format!("node-{i}"),
            format!("http://10.0.{}.{}:8001", i / 250, i % 250),
            Some(format!("op-{}", i % 1000)),
            1 + (i % 5) as u32,
            5,
            now,
        ));
    }
    let rounds = 200;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let chosen = registry.assign(3, &[], &[], now, 30_000);
        samples.push(started.elapsed());
        assert_eq!(chosen.len(), 3);
    }
    Summary::of(samples).to_string()
}
