//! Consensus: fan a battle out to k selected nodes, validate their votes, settle by strict
//! majority of the k, fall back to local generation when no quorum forms.

mod call;
mod hedge;
mod local_engines;
mod round;
pub mod sanitize;
pub mod tally;
mod vote;

pub use hedge::HedgeSettings;
pub use local_engines::{FallbackSettings, LocalEngines};
pub use round::{Consensus, ConsensusSettings, Decision, Pending, RoundWatcher, Verdict};
pub use vote::{Vote, VoteRole};

/// The started consensus domain, and the summoner that writes character text (Gemini when
/// configured), which shares its engine.
pub type Started = (
    std::sync::Arc<Consensus>,
    Option<std::sync::Arc<dyn hero_engine::Summoner>>,
);

/// Consensus over the nodes of `registry` with the configured fallback engines.
pub fn start(
    registry: &std::sync::Arc<crate::nodes::NodeRegistry>,
    clock: &crate::clock::SharedClock,
    settings: &ConsensusSettings,
    fallback: &FallbackSettings,
    allow_private_node_urls: bool,
) -> anyhow::Result<Started> {
    let engines = LocalEngines::from_settings(fallback)?;
    let consensus = Consensus::new(
        std::sync::Arc::clone(registry),
        std::sync::Arc::clone(clock),
        settings.clone(),
        engines.fallbacks,
        allow_private_node_urls,
    )?;
    Ok((std::sync::Arc::new(consensus), engines.summoner))
}
