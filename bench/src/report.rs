//! What the scenarios report: timing summaries, one line per scenario (and its JSON), numbers
//! as people read them, and percentiles from the buckets of a Prometheus histogram.

use std::collections::HashMap;
use std::time::Duration;

pub struct Summary {
    sorted: Vec<Duration>,
}

impl Summary {
    pub fn of(mut samples: Vec<Duration>) -> Summary {
        samples.sort();
        Summary { sorted: samples }
    }

    pub fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.sorted.len() as f64 - 1.0) * p).round() as usize;
        self.sorted[i.min(self.sorted.len() - 1)]
    }

    /// The `p` percentile in milliseconds.
    pub fn ms(&self, p: f64) -> f64 {
        self.pct(p).as_secs_f64() * 1e3
    }
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if value < -0.5 { format!("-{out}") } else { out }
}

/// One scenario's result: its summary line and its JSON object.
#[derive(Debug, Default)]
pub struct Outcome {
    pub scenario: &'static str,
    /// The measured figures, as printed (`1,043 battles/s`).
    pub figures: String,
    /// The target, as printed (`≥ 5,000/s`).
    pub target: &'static str,
    /// Sizes and checks, as printed in parentheses.
    pub details: Vec<String>,
    /// Correctness checks that failed (the exit status is non-zero when any did).
    pub failed_checks: Vec<String>,
    /// What could not be measured (a metric or flag this aggregator lacks), said in the line.
    pub unmeasured: Vec<String>,
    /// Why the scenario could not run, when it could not.
    pub error: Option<String>,
    /// The figures as JSON.
    pub json: serde_json::Map<String, serde_json::Value>,
}

impl Outcome {
    pub fn new(scenario: &'static str, target: &'static str) -> Outcome {
        Outcome {
            scenario,
            target,
            ..Outcome::default()
        }
    }

    pub fn detail(&mut self, text: impl Into<String>) {
        self.details.push(text.into());
    }

    pub fn set(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.json.insert(key.to_owned(), value.into());
    }

    /// Records a correctness check: failed ones are said in the line and fail the run.
    pub fn check(&mut self, ok: bool, failure: impl Into<String>) {
        if !ok {
            self.failed_checks.push(failure.into());
        }
    }

    /// Takes in a part of this scenario (one pass of several): its details and checks with
    /// `part` before them, its JSON under `part`.
    pub fn absorb(&mut self, part: &str, other: Outcome) {
        self.details
            .push(format!("{part}: {}", other.details.join(", ")));
        self.failed_checks.extend(
            other
                .failed_checks
                .into_iter()
                .map(|f| format!("{part}: {f}")),
        );
        self.unmeasured.extend(other.unmeasured);
        self.set(part, serde_json::Value::Object(other.json));
    }

    /// Whether the run must exit non-zero for this scenario: a check failed, or it could not
    /// run or measure.
    pub fn failed(&self) -> bool {
        !self.failed_checks.is_empty() || !self.unmeasured.is_empty() || self.error.is_some()
    }

    pub fn line(&self) -> String {
        let mut details = self.details.clone();
        details.extend(self.unmeasured.iter().map(|u| format!("not measured: {u}")));
        details.extend(
            self.failed_checks
                .iter()
                .map(|f| format!("CHECK FAILED: {f}")),
        );
        details.extend(self.error.iter().map(|e| format!("error: {e}")));
        format!(
            "{:<19} {:<34} target {:<22} ({})",
            self.scenario,
            self.figures,
            self.target,
            details.join(", ")
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario,
            "figures": self.json,
            "summary": self.figures,
            "target": self.target,
            "details": self.details,
            "unmeasured": self.unmeasured,
            "failed_checks": self.failed_checks,
            "error": self.error,
        })
    }

    /// A scenario that could not run.
    pub fn could_not_run(
        scenario: &'static str,
        target: &'static str,
        error: &anyhow::Error,
    ) -> Outcome {
        let mut outcome = Outcome::new(scenario, target);
        outcome.figures = "could not run".into();
        outcome.error = Some(format!("{error:#}"));
        outcome
    }
}

/// The cumulative buckets `(upper bound, count)` of histogram `name` in a Prometheus text
/// page, summed over its label sets, by ascending bound (`+Inf` last).
pub fn histogram(page: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut by_bound: HashMap<String, f64> = HashMap::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|l| l.trim().strip_prefix("le=\""))
            .and_then(|l| l.strip_suffix('"'))
        else {
            continue;
        };
        if let Ok(count) = value.trim().parse::<f64>() {
            *by_bound.entry(le.to_owned()).or_default() += count;
        }
    }
    let mut buckets: Vec<(f64, f64)> = by_bound
        .into_iter()
        .filter_map(|(le, count)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// Buckets as JSON: `[{"le": 0.001, "count": 12}, …, {"le": "+Inf", "count": 40}]`.
pub fn buckets_json(buckets: &[(f64, f64)]) -> serde_json::Value {
    buckets
        .iter()
        .map(|&(le, count)| {
            let le = if le.is_finite() {
                serde_json::json!(le)
            } else {
                serde_json::json!("+Inf")
            };
            serde_json::json!({"le": le, "count": count})
        })
        .collect()
}

/// What was observed between two scrapes: `after` minus `before`, bucket by bucket.
pub fn since(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, c)| *c);
            (bound, count - earlier)
        })
        .collect()
}

/// The sum of every series of counter `name` in a Prometheus text page; `None` when absent.
pub fn counter(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// A percentile read from histogram buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantile {
    /// Interpolated linearly inside its bucket, as Prometheus' `histogram_quantile` does.
    Within(f64),
    /// Beyond the largest finite bound (the value is that bound).
    Above(f64),
}

impl Quantile {
    /// In milliseconds, `>` marking a value above the last bound.
    pub fn ms_text(&self) -> String {
        match self {
            Quantile::Within(v) => format!("{:.3} ms", v * 1e3),
            Quantile::Above(v) => format!("> {:.3} ms", v * 1e3),
        }
    }

    pub fn seconds(&self) -> f64 {
        match self {
            Quantile::Within(v) | Quantile::Above(v) => *v,
        }
    }
}

/// The `q` quantile (0–1) of cumulative buckets; `None` when nothing was observed.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<Quantile> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(Quantile::Above(lower));
            }
            let share = if count > below {
                (rank - below) / (count - below)
            } else {
                0.0
            };
            return Some(Quantile::Within(lower + (bound - lower) * share));
        }
        (lower, below) = (bound, count);
    }
    Some(Quantile::Above(lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\
# TYPE hero_x_seconds histogram
hero_x_seconds_bucket{le=\"0.001\"} 50
hero_x_seconds_bucket{le=\"0.002\"} 90
hero_x_seconds_bucket{le=\"+Inf\"} 100
hero_x_seconds_sum 0.2
hero_x_seconds_count 100
hero_y_seconds_bucket{route=\"/a\",le=\"0.5\"} 1
hero_y_seconds_bucket{route=\"/b\",le=\"0.5\"} 2
hero_y_seconds_bucket{route=\"/b\",le=\"+Inf\"} 4
hero_y_seconds_bucket{route=\"/a\",le=\"+Inf\"} 1
hero_hedges_total 7
hero_node_requests_total{result=\"ok\"} 10
hero_node_requests_total{result=\"timeout\"} 2
hero_node_requests_totally 99
";

    #[test]
    fn buckets_are_summed_over_label_sets_and_sorted() {
        assert_eq!(
            histogram(PAGE, "hero_x_seconds"),
            vec![(0.001, 50.0), (0.002, 90.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!(
            histogram(PAGE, "hero_y_seconds"),
            vec![(0.5, 3.0), (f64::INFINITY, 5.0)]
        );
        assert!(histogram(PAGE, "hero_missing").is_empty());
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let b = histogram(PAGE, "hero_x_seconds");
        assert_eq!(quantile(&b, 0.5), Some(Quantile::Within(0.001)));
        // Rank 70 of 100: halfway through the (0.001, 0.002] bucket of 40.
        let Some(Quantile::Within(p70)) = quantile(&b, 0.7) else {
            panic!("within")
        };
        assert!((p70 - 0.0015).abs() < 1e-12, "{p70}");
        assert_eq!(quantile(&b, 0.99), Some(Quantile::Above(0.002)));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[(f64::INFINITY, 0.0)], 0.5), None);
        // The first bucket starts at zero.
        let Some(Quantile::Within(p10)) = quantile(&b, 0.1) else {
            panic!("within")
        };
        assert!((p10 - 0.0002).abs() < 1e-12, "{p10}");
    }

    #[test]
    fn a_window_is_the_difference_of_two_scrapes() {
        let before = vec![(0.001, 10.0), (0.002, 11.0), (f64::INFINITY, 12.0)];
        let after = vec![(0.001, 30.0), (0.002, 35.0), (f64::INFINITY, 40.0)];
        assert_eq!(
            since(&after, &before),
            vec![(0.001, 20.0), (0.002, 24.0), (f64::INFINITY, 28.0)]
        );
        // A histogram that had no series yet at the first scrape.
        assert_eq!(since(&after, &[]), after);
        assert_eq!(
            buckets_json(&[(0.001, 2.0), (f64::INFINITY, 3.0)]),
            serde_json::json!([{"le": 0.001, "count": 2.0}, {"le": "+Inf", "count": 3.0}])
        );
    }

    #[test]
    fn counters_sum_their_series_and_only_theirs() {
        assert_eq!(counter(PAGE, "hero_hedges_total"), Some(7.0));
        assert_eq!(counter(PAGE, "hero_node_requests_total"), Some(12.0));
        assert_eq!(counter(PAGE, "hero_absent_total"), None);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1043.0), "1,043");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-2500.0), "-2,500");
    }
}
