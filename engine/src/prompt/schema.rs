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

/// Longest battle log a grammar-constrained model may write (the contract allows 2 to 40
/// entries): short enough that a small CPU model answers in seconds, not minutes.
pub(crate) const GRAMMAR_MAX_LOG: u64 = 12;

/// `schema` with the contract's bounds written in (array lengths, string lengths, the action
/// keywords, number ranges), for servers that compile the schema into a grammar (llama.cpp,
/// llama-cpp-python): a small model at temperature 0 can otherwise repeat log entries until it
/// runs out of tokens. OpenAI's strict mode refuses these keywords, so `json_schema` requests
/// keep the plain schema.
pub(crate) fn for_grammar(mut schema: Value) -> Value {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return schema;
    };
    let mut bound = |key: &str, bounds: Value| {
        if let (Some(Value::Object(field)), Value::Object(bounds)) =
            (properties.get_mut(key), bounds)
        {
            field.extend(bounds);
        }
    };
    bound(
        "battle_description",
        json!({"minLength": 1, "maxLength": 600}),
    );
    bound("name", json!({"minLength": 2, "maxLength": 50}));
    bound("description", json!({"minLength": 1, "maxLength": 500}));
    bound(
        "skill_description",
        json!({"minLength": 1, "maxLength": 300}),
    );
    if let Some(log) = properties
        .get_mut("battle_log")
        .and_then(Value::as_object_mut)
    {
        log.insert("minItems".into(), json!(2));
        log.insert("maxItems".into(), json!(GRAMMAR_MAX_LOG));
        if let Some(entry) = log
            .get_mut("items")
            .and_then(|i| i.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            let mut set = |key: &str, bounds: Value| {
                if let (Some(Value::Object(field)), Value::Object(bounds)) =
                    (entry.get_mut(key), bounds)
                {
                    field.extend(bounds);
                }
            };
            set("round", json!({"minimum": 1, "maximum": 12}));
            set("damage", json!({"minimum": 0, "maximum": 999}));
            set("target_hp", json!({"minimum": 0, "maximum": 9999}));
            set(
                "action",
                json!({"enum": ["attack", "critical", "dodge", "skill", "defend"]}),
            );
            set("text", json!({"minLength": 1, "maxLength": 200}));
        }
    }
    schema
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_bounds_follow_the_contract_and_leave_the_rest() {
        let bounded = for_grammar(battle(Some(["c1", "c2"])));
        let log = &bounded["properties"]["battle_log"];
        assert_eq!(
            (log["minItems"].clone(), log["maxItems"].clone()),
            (json!(2), json!(GRAMMAR_MAX_LOG))
        );
        let entry = &log["items"]["properties"];
        assert_eq!(entry["text"]["maxLength"], 200);
        assert_eq!(entry["action"]["enum"].as_array().unwrap().len(), 5);
        assert_eq!(entry["actor"]["enum"], json!(["c1", "c2"]));
        assert_eq!(
            bounded["properties"]["battle_description"]["maxLength"],
            600
        );
        assert!(
            battle(None)["properties"]["battle_log"]
                .get("maxItems")
                .is_none(),
            "plain schema untouched"
        );
        assert_eq!(
            for_grammar(character())["properties"]["name"]["maxLength"],
            50
        );
    }
}
