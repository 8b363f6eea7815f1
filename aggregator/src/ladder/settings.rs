//! Flags of the ladder and its betting: times of a scheduled battle, bet limits, the house
//! cut and what counts as suspicious.

use clap::Args;

use crate::scheduler::slots::parse_duration_ms;

#[derive(Debug, Clone, Args)]
pub struct LadderArgs {
    /// From a pairing slot to the start of the battles it schedules.
    #[arg(long, env = "HERO_LADDER_BATTLE_DELAY", default_value = "1h",
          value_parser = parse_duration_ms)]
    pub ladder_battle_delay: i64,
    /// Betting on a scheduled battle opens this long before its start.
    #[arg(long, env = "HERO_BETTING_OPENS_BEFORE", default_value = "30m",
          value_parser = parse_duration_ms)]
    pub betting_opens_before: i64,
    /// Betting closes this long before the start.
    #[arg(long, env = "HERO_BETTING_CLOSES_BEFORE", default_value = "5m",
          value_parser = parse_duration_ms)]
    pub betting_closes_before: i64,
    /// A ladder entry whose player has not signed in for this long is idle: not paired.
    #[arg(long, env = "HERO_LADDER_IDLE_AFTER", default_value = "7d",
          value_parser = parse_duration_ms)]
    pub ladder_idle_after: i64,
    /// Largest single bet, in gold.
    #[arg(long, env = "HERO_BET_MAX", default_value_t = 1_000,
          value_parser = clap::value_parser!(i64).range(1..=1_000_000_000))]
    pub bet_max: i64,
    /// Largest total one player may stake on one scheduled battle, in gold.
    #[arg(long, env = "HERO_BET_MAX_PER_BATTLE", default_value_t = 5_000,
          value_parser = clap::value_parser!(i64).range(1..=1_000_000_000))]
    pub bet_max_per_battle: i64,
    /// The house's cut of a settled pool, in basis points (500 = 5%).
    #[arg(long, env = "HERO_HOUSE_CUT_BP", default_value_t = 500,
          value_parser = clap::value_parser!(i64).range(0..=5_000))]
    pub house_cut_bp: i64,
    /// Flag a player who places this many bets within --flag-burst-window.
    #[arg(long, env = "HERO_FLAG_BURST_BETS", default_value_t = 10,
          value_parser = clap::value_parser!(i64).range(2..=100_000))]
    pub flag_burst_bets: i64,
    /// The window of --flag-burst-bets.
    #[arg(long, env = "HERO_FLAG_BURST_WINDOW", default_value = "1m",
          value_parser = parse_duration_ms)]
    pub flag_burst_window: i64,
    /// Flag a scheduled battle when this many accounts younger than --flag-new-account-age
    /// back one side.
    #[arg(long, env = "HERO_FLAG_NEW_ACCOUNTS", default_value_t = 5,
          value_parser = clap::value_parser!(i64).range(2..=100_000))]
    pub flag_new_accounts: i64,
    /// Accounts younger than this count as new for --flag-new-accounts.
    #[arg(long, env = "HERO_FLAG_NEW_ACCOUNT_AGE", default_value = "1d",
          value_parser = parse_duration_ms)]
    pub flag_new_account_age: i64,
}

impl LadderArgs {
    /// Windows that cannot work are refused at start.
    pub fn check(&self) -> Result<(), String> {
        if self.betting_closes_before >= self.betting_opens_before {
            return Err(format!(
                "--betting-closes-before ({} ms) must be shorter than --betting-opens-before ({} ms)",
                self.betting_closes_before, self.betting_opens_before
            ));
        }
        if self.ladder_battle_delay <= self.betting_closes_before {
            return Err(
                "--ladder-battle-delay must be longer than --betting-closes-before, or no \
                 scheduled battle could ever take a bet"
                    .into(),
            );
        }
        if self.bet_max > self.bet_max_per_battle {
            return Err("--bet-max must not exceed --bet-max-per-battle".into());
        }
        Ok(())
    }
}
