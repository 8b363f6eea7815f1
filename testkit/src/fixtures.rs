//! Fighters, battle requests and results used across the tests.

use hero_protocol::{BattleRequest, Fighter};
use serde_json::{Value, json};

/// A fighter with these stats and no skill text.
pub fn fighter(
    id: &str,
    name: &str,
    strength: u32,
    agility: u32,
    luck: u32,
    rarity: u32,
) -> Fighter {
    Fighter {
        id: id.to_owned(),
        name: name.to_owned(),
        strength,
        agility,
        luck,
        rarity,
        skill_description: String::new(),
    }
}

/// `fighter` with a skill description.
pub fn skilled(fighter: Fighter, skill: &str) -> Fighter {
    Fighter {
        skill_description: skill.to_owned(),
        ..fighter
    }
}

/// A plain fighter: named after its id in capitals, 10 in every stat, one star, no skill.
pub fn plain(id: &str) -> Fighter {
    fighter(id, &id.to_uppercase(), 10, 10, 10, 1)
}

/// Plain fighters `a` and `b`.
pub fn plain_pair() -> Vec<Fighter> {
    vec![plain("a"), plain("b")]
}

/// Aria (`c1`) and Borin (`c2`), the fighters of the end-to-end tests.
pub fn pair() -> Vec<Fighter> {
    vec![
        skilled(fighter("c1", "Aria", 60, 40, 30, 3), "Storm blade"),
        skilled(fighter("c2", "Borin", 45, 55, 35, 2), "Shield bash"),
    ]
}

/// The LLM engines' fighters: `c1` (Aria, Flame Lance) and `c2` (Borin, Stone Skin), whose
/// fight [`valid_battle`] tells.
pub fn lancer_and_stone_wall() -> Vec<Fighter> {
    vec![
        skilled(
            fighter("c1", "Aria", 10, 6, 4, 2),
            "Flame Lance: a spear of fire.",
        ),
        skilled(
            fighter("c2", "Borin", 12, 6, 4, 2),
            "Stone Skin: shrugs off a blow.",
        ),
    ]
}

/// A battle request between [`lancer_and_stone_wall`] with seed 7.
pub fn battle_request() -> BattleRequest {
    BattleRequest {
        battle_id: "battle-1".into(),
        prompt: "Aria vs Borin".into(),
        seed: Some(7),
        fighters: Some(lancer_and_stone_wall()),
    }
}

/// A result that passes validation for [`lancer_and_stone_wall`]: Aria wins by knockout.
pub fn valid_battle(winner: &str) -> Value {
    json!({
        "battle_log": [
            {"round": 1, "actor": "c1", "target": "c2", "action": "attack", "damage": 60, "target_hp": 140, "text": "Aria strikes."},
            {"round": 1, "actor": "c2", "target": "c1", "action": "attack", "damage": 40, "target_hp": 130, "text": "Borin hits back."},
            {"round": 2, "actor": "c1", "target": "c2", "action": "skill", "damage": 140, "target_hp": 0, "text": "Flame Lance ends it."}
        ],
        "winner": winner,
        "battle_description": "Aria wins by knockout in round 2."
    })
}

/// A character card as a model would write it.
pub fn card(name: &str) -> Value {
    json!({
        "name": name,
        "description": "A fox spirit who guards the bamboo forest.",
        "skill_description": "Foxfire: blinding blue flames that confuse the foe."
    })
}
