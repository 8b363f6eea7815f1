//! What the Sim engine says about the tests' fighters: what honest nodes answer. The fighters
//! themselves are `hero_testkit::fixtures`.

use hero_protocol::Fighter;
use hero_testkit::LlmBehavior;

/// The winner the Sim engine gives for these fighters and seed (what honest nodes say).
pub fn sim_winner(battle_id: &str, fighters: &[Fighter], seed: u64) -> String {
    hero_engine::Sim
        .battle(battle_id, fighters, Some(seed))
        .expect("sim battle")
        .winner
}

/// A fake LLM that answers each battle as the Sim engine does for these fighters and seed, so
/// LLM nodes agree with Sim nodes.
pub fn agree_with_sim(fighters: &[Fighter], seed: u64) -> LlmBehavior {
    let fighters = fighters.to_vec();
    LlmBehavior::answer(move |battle_id| {
        hero_engine::Sim
            .battle(battle_id, &fighters, Some(seed))
            .expect("the fake's fighters can fight")
    })
}
