//! Guest players with a character each, as a game client makes them (docs/game-api.md), and
//! the battles they start.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::Method;

use crate::lean::{self, Plan};

/// Aggregator flags that let many players on one address play flat out: no per-address
/// sign-in or account limits, no per-player or per-opponent battle limits, and energy that
/// never runs short (a battle costs 1 of the 100 a player starts with, 1 back every second),
/// so the energy and ledger writes still happen.
pub const PLAYER_FLAGS: [&str; 16] = [
    "--ip-limit-auth-per-minute",
    "0",
    "--ip-limit-accounts-per-day",
    "0",
    "--rate-limit-requests-per-hour",
    "10000000",
    "--rate-limit-battles-per-hour",
    "10000000",
    "--battles-per-opponent-per-day",
    "0",
    "--battle-energy-cost",
    "1",
    "--energy-regen-secs",
    "1",
    "--access-token-ttl-secs",
    "3600",
];

/// Signed-in guests and their characters.
pub struct Players {
    tokens: Arc<Vec<String>>,
    characters: Arc<Vec<String>>,
}

impl Players {
    /// `n` guests, each summoning one character.
    pub async fn sign_up(addr: SocketAddr, n: u64) -> anyhow::Result<Players> {
        let guests = lean::drive(addr, Plan::count(n, 16).keeping_answers(), |_| {
            lean::request(Method::POST, "/api/v1/auth/guest", None, None)
        })
        .await?;
        let tokens = Arc::new(field(&guests, "access_token").context("guests")?);
        let summoning = Arc::clone(&tokens);
        let summoned = lean::drive(addr, Plan::count(n, 16).keeping_answers(), move |i| {
            let body = serde_json::json!({"prompt": format!("bench hero number {i}")});
            lean::request(
                Method::POST,
                "/api/v1/characters",
                Some(&summoning[i as usize]),
                Some(body.to_string()),
            )
        })
        .await?;
        let characters = Arc::new(field(&summoned, "id").context("characters")?);
        Ok(Players { tokens, characters })
    }

    /// Requests starting battles, player after player, each against an opponent matched by
    /// rating.
    pub fn battles(
        &self,
    ) -> impl Fn(u64) -> anyhow::Result<hyper::Request<String>> + Send + Sync + use<> {
        let (tokens, characters) = (Arc::clone(&self.tokens), Arc::clone(&self.characters));
        move |i| {
            let p = (i % tokens.len() as u64) as usize;
            let body = serde_json::json!({"character_id": characters[p]}).to_string();
            lean::request(
                Method::POST,
                "/api/v1/battles",
                Some(&tokens[p]),
                Some(body),
            )
        }
    }
}

/// `key` of every answer's JSON body, in request order; an error if any answer failed.
fn field(tally: &lean::Tally, key: &str) -> anyhow::Result<Vec<String>> {
    tally
        .answers
        .iter()
        .map(|(_, answer)| {
            answer.ok_json()?[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {key} in the answer"))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .and_then(|values| {
            anyhow::ensure!(
                tally.failures == 0,
                "{} requests got no answer",
                tally.failures
            );
            Ok(values)
        })
}
