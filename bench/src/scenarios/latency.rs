//! The stragglers' latency model: a node whose engine is the real Sim engine behind a drawn
//! delay, lognormal around a median, with a share of answers many times slower.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hero_engine::{BattleEngine, EngineError, Sim};
use hero_protocol::{BattleRequest, BattleResult};
use rand::Rng;

/// How long a node takes to answer.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    pub median_ms: f64,
    /// Sigma of ln(time).
    pub sigma: f64,
    /// Share of answers (0–1) that straggle.
    pub straggler_share: f64,
    /// How many times slower a straggling answer is.
    pub straggler_factor: f64,
}

impl Model {
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        // Box–Muller: a standard normal from two uniforms, u1 in (0, 1] so ln(u1) is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let mut ms = self.median_ms * (self.sigma * z).exp();
        if rng.random::<f64>() < self.straggler_share {
            ms *= self.straggler_factor;
        }
        Duration::from_secs_f64(ms.max(0.0) / 1e3)
    }
}

/// The Sim engine answering after a delay drawn from the model; every delay drawn is kept.
pub struct Delayed {
    pub model: Model,
    pub drawn: Arc<Mutex<Vec<Duration>>>,
}

#[async_trait]
impl BattleEngine for Delayed {
    fn kind(&self) -> &'static str {
        "sim"
    }

    async fn generate(&self, request: &BattleRequest) -> Result<BattleResult, EngineError> {
        let delay = self.model.draw(&mut rand::rng());
        self.drawn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(delay);
        tokio::time::sleep(delay).await;
        Sim.generate(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_follow_the_median_and_the_straggler_share() {
        let model = Model {
            median_ms: 20.0,
            sigma: 0.5,
            straggler_share: 0.02,
            straggler_factor: 10.0,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut ms: Vec<f64> = (0..20_000)
            .map(|_| model.draw(&mut rng).as_secs_f64() * 1e3)
            .collect();
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        assert!((19.0..21.0).contains(&median), "median {median}");
        // Without stragglers, 20 · e^(0.5 · 3.09) ≈ 94 ms is the 99.9th percentile: nearly
        // all answers above 150 ms are stragglers.
        let slow = ms.iter().filter(|&&m| m > 150.0).count() as f64 / ms.len() as f64;
        assert!((0.01..0.02).contains(&slow), "share above 150 ms {slow}");
    }
}
