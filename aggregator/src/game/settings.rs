//! Flags for the game's economy: what a battle costs, how fast energy comes back and how often
//! two players may fight each other.

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
    /// Battles one player may start per UTC day against the characters of any one other player
    /// (0: no limit). With free guest accounts, this is what keeps alt accounts from farming
    /// a main one (docs/game-api.md, "Fair play").
    #[arg(long, env = "HERO_BATTLES_PER_OPPONENT_PER_DAY", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub battles_per_opponent_per_day: u64,
}
