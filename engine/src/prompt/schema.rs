//! The JSON Schemas of the answers we accept, in the strict form OpenAI-compatible servers
//! take (every property required, no extra properties). Gemini's dialect is derived from
//! these in `gemini::schema`.

use serde_json::{Value, json};

/// A battle result. With the fighters' ids, `winner`, `actor` and `target` are limited to
/// them, so a constrained decoder cannot name a third fighter.
pub(crate) fn battle(ids: Option<[&str; 2]>) -> Value {
    let fighter_id = |description: &str| match ids {
        Some(ids) => json!({"type": "string", "enum": ids, "description": description}),
        None => json!({"type": "string", "description": description}),
    };
    json!({
        "type": "object",
        "properties": {
            "battle_log": {
                "type": "array",
                "description": "The fight, action by action, in order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "round": {"type": "integer", "description": "Round number, from 1."},
                        "actor": fighter_id("Id of the fighter acting."),
                        "target": fighter_id("Id of the other fighter."),
                        "action": {"type": "string", "description": "attack, critical, dodge, skill or defend."},
                        "damage": {"type": "integer", "description": "Hit points the target loses."},
                        "target_hp": {"type": "integer", "description": "The target's hit points afterwards."},
                        "text": {"type": "string", "description": "One sentence."}
                    },
                    "required": ["round", "actor", "target", "action", "damage", "target_hp", "text"],
                    "additionalProperties": false
                }
            },
            "winner": fighter_id("Id of the winning fighter."),
            "battle_description": {"type": "string", "description": "Summary of the fight."}
        },
        "required": ["battle_log", "winner", "battle_description"],
        "additionalProperties": false
    })
}

/// A character card from a summon.
pub(crate) fn character() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "2 to 50 letters, digits, spaces, - or _."},
            "description": {"type": "string", "description": "Who the hero is."},
            "skill_description": {"type": "string", "description": "The signature skill."}
        },
        "required": ["name", "description", "skill_description"],
        "additionalProperties": false
    })
}
