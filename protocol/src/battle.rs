//! Battle generation: the request a node receives and the result it answers with.

use serde::{Deserialize, Serialize};

/// Most log entries a result may carry; longer logs are refused by validation.
pub const MAX_LOG_ENTRIES: usize = 200;

/// One combatant as the aggregator snapshots it for a battle (our extension to the seed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fighter {
    /// Character id; a result's `winner` is one of these.
    pub id: String,
    pub name: String,
    pub strength: u32,
    pub agility: u32,
    pub luck: u32,
    /// 1 to 5 stars.
    pub rarity: u32,
    /// Free text describing the fighter's skill.
    #[serde(default)]
    pub skill_description: String,
}

/// `POST /generate_battle` body. The seed sends `battle_id`, `prompt`, `seed`; `fighters`
/// is our extension and is ignored by seed-style nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BattleRequest {
    pub battle_id: String,
    pub prompt: String,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fighters: Option<Vec<Fighter>>,
}

/// One line of a battle: who did what to whom, and what the target has left.
///
/// Every field has a default so a log from a seed-style node decodes; validation then
/// decides whether it is complete enough to count as a vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BattleLogEntry {
    #[serde(default)]
    pub round: u32,
    /// Fighter id of the one acting.
    #[serde(default)]
    pub actor: String,
    /// Fighter id of the one acted upon.
    #[serde(default)]
    pub target: String,
    /// Short action keyword: `attack`, `critical`, `dodge`, `skill`, ...
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub damage: u32,
    /// The target's hit points after this action.
    #[serde(default)]
    pub target_hp: u32,
    /// One readable line for the replay.
    #[serde(default)]
    pub text: String,
}

/// `POST /generate_battle` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BattleResult {
    /// Fighter id of the winner.
    pub winner: String,
    pub battle_log: Vec<BattleLogEntry>,
    pub battle_description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_style_request_without_extensions_decodes() {
        let req: BattleRequest =
            serde_json::from_str(r#"{"battle_id":"b1","prompt":"fight!","seed":null}"#).unwrap();
        assert_eq!(req.battle_id, "b1");
        assert_eq!(req.seed, None);
        assert_eq!(req.fighters, None);
    }

    #[test]
    fn our_request_is_readable_by_a_seed_model() {
        let req = BattleRequest {
            battle_id: "b1".into(),
            prompt: "p".into(),
            seed: Some(7),
            fighters: None,
        };
        let v: serde_json::Value = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"battle_id":"b1","prompt":"p","seed":7})
        );
    }

    #[test]
    fn seed_style_result_with_unknown_fields_decodes() {
        let body = r#"{
            "winner": "c1",
            "battle_log": [{"round": 1, "attacker": "c1", "message": "hits", "actor": "c1"}],
            "battle_description": "c1 wins",
            "model": "gemini-pro"
        }"#;
        let res: BattleResult = serde_json::from_str(body).unwrap();
        assert_eq!(res.winner, "c1");
        assert_eq!(res.battle_log[0].actor, "c1");
        assert_eq!(res.battle_log[0].target, "");
    }

    #[test]
    fn result_without_winner_is_refused() {
        let body = r#"{"battle_log": [], "battle_description": "?"}"#;
        assert!(serde_json::from_str::<BattleResult>(body).is_err());
    }
}
