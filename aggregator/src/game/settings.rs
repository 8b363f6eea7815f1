//! Flags for the game's economy: what a battle costs and how fast energy comes back.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct GameArgs {
    /// Energy a player spends to start a battle (refunded when the battle ends in ERROR).
    #[arg(long, env = "HERO_BATTLE_ENERGY_COST", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub battle_energy_cost: u64,
    /// Seconds for one point of energy to regenerate (up to the player's maximum).
    #[arg(long, env = "HERO_ENERGY_REGEN_SECS", default_value_t = 360,
          value_parser = clap::value_parser!(u64).range(1..=86_400 * 365))]
    pub energy_regen_secs: u64,
}
