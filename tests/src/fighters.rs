//! Fighters used across the end-to-end tests.

use hero_protocol::Fighter;

pub fn pair() -> Vec<Fighter> {
    vec![
        Fighter {
            id: "c1".into(),
            name: "Aria".into(),
            strength: 60,
            agility: 40,
            luck: 30,
            rarity: 3,
            skill_description: "Storm blade".into(),
        },
        Fighter {
            id: "c2".into(),
            name: "Borin".into(),
            strength: 45,
            agility: 55,
            luck: 35,
            rarity: 2,
            skill_description: "Shield bash".into(),
        },
    ]
}

/// The winner the Sim engine gives for these fighters and seed (what honest nodes say).
pub fn sim_winner(battle_id: &str, fighters: &[Fighter], seed: u64) -> String {
    hero_engine::Sim
        .battle(battle_id, fighters, Some(seed))
        .expect("sim battle")
        .winner
}
