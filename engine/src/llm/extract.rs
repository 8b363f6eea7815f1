//! Turning a model's text into our types: strip Markdown fences and chatter around the JSON,
//! decode, repair a battle's arithmetic ([`super::repair`]) and validate it against its
//! fighters. Never invents content beyond what the repair rules derive.

use hero_protocol::{BattleRequest, BattleResult, MAX_LOG_ENTRIES};
use serde::de::DeserializeOwned;

use crate::prompt::CharacterText;
use crate::{EngineError, MAX_DESCRIPTION_CHARS, validate};

/// How much of a bad answer an error message quotes.
const QUOTE_CHARS: usize = 120;

/// The JSON inside a model's answer: the body of a ```json fence if there is one, otherwise
/// the text from the first `{` to the last `}`.
pub(crate) fn json_text(text: &str) -> &str {
    let text = text.trim();
    let inner = match text.find("```") {
        Some(open) => {
            let after = &text[open + 3..];
            // Skip the info string (`json`, `JSON`, ...) up to the end of its line.
            let body = after.find('\n').map_or(after, |nl| &after[nl + 1..]);
            body.find("```").map_or(body, |close| &body[..close])
        }
        None => text,
    };
    let inner = inner.trim();
    match (inner.find('{'), inner.rfind('}')) {
        (Some(start), Some(end)) if start < end => &inner[start..=end],
        _ => inner,
    }
}

/// Decodes `T` from a model's answer, or says why not (quoting a little of it).
pub(crate) fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, EngineError> {
    serde_json::from_str(json_text(text)).map_err(|e| {
        let quoted: String = text.trim().chars().take(QUOTE_CHARS).collect();
        EngineError::InvalidOutput(format!(
            "{what} is not valid JSON of the expected shape ({e}): {quoted:?}"
        ))
    })
}

/// Decodes and checks a battle; the second value says whether it had to be repaired. With
/// fighters, the battle is repaired and the full [`validate`] rules apply; a seed-style
/// request without fighters gets the shape and size checks only.
pub(crate) fn battle(
    text: &str,
    request: &BattleRequest,
) -> Result<(BattleResult, bool), EngineError> {
    match request.fighters.as_deref() {
        Some(fighters) => {
            let raw = decode(text, "the battle")?;
            let (result, repaired) = super::repair::repair(fighters, raw);
            validate(fighters, &result).map_err(|e| {
                EngineError::InvalidOutput(format!("the battle fails validation: {e}"))
            })?;
            Ok((result, repaired))
        }
        None => {
            let result: BattleResult = decode(text, "the battle")?;
            loose_checks(&result)?;
            Ok((result, false))
        }
    }
}

/// The two fighter ids of a request, when it has exactly two fighters.
pub(crate) fn fighter_ids(request: &BattleRequest) -> Option<[&str; 2]> {
    match request.fighters.as_deref() {
        Some([a, b]) => Some([a.id.as_str(), b.id.as_str()]),
        _ => None,
    }
}

/// Decodes a character card, trims it and checks the card rules.
pub(crate) fn character(text: &str) -> Result<CharacterText, EngineError> {
    let card: CharacterText = decode(text, "the character card")?;
    let card = card.trimmed();
    card.check().map_err(|why| {
        EngineError::InvalidOutput(format!("the character card is refused: {why}"))
    })?;
    Ok(card)
}

fn loose_checks(result: &BattleResult) -> Result<(), EngineError> {
    let refuse = |why: &str| Err(EngineError::InvalidOutput(format!("the battle {why}")));
    if result.winner.trim().is_empty() {
        return refuse("names no winner");
    }
    if result.battle_log.is_empty() || result.battle_log.len() > MAX_LOG_ENTRIES {
        return refuse("log is empty or too long");
    }
    let description = result.battle_description.trim();
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION_CHARS {
        return refuse("description is empty or too long");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_is_kept() {
        assert_eq!(json_text(" {\"a\":1} \n"), "{\"a\":1}");
    }

    #[test]
    fn fenced_json_is_unwrapped() {
        assert_eq!(json_text("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(json_text("```\n{\"a\":1}\n```\n"), "{\"a\":1}");
        assert_eq!(
            json_text("Here you go:\n```JSON\n{\"a\":{\"b\":2}}\n```\nEnjoy!"),
            "{\"a\":{\"b\":2}}"
        );
    }

    #[test]
    fn chatter_around_bare_json_is_dropped() {
        assert_eq!(json_text("Sure! {\"a\":1} Hope it helps."), "{\"a\":1}");
    }

    #[test]
    fn text_without_json_stays_as_is_and_fails_to_decode() {
        let err = decode::<BattleResult>("I cannot do that.", "the battle").unwrap_err();
        assert!(matches!(err, EngineError::InvalidOutput(m) if m.contains("I cannot do that.")));
    }

    #[test]
    fn seed_style_results_get_the_loose_checks() {
        let request = BattleRequest {
            battle_id: "b".into(),
            prompt: "p".into(),
            seed: None,
            fighters: None,
        };
        let ok = r#"{"winner":"c1","battle_log":[{"round":1}],"battle_description":"c1 wins"}"#;
        assert_eq!(battle(ok, &request).unwrap().0.winner, "c1");
        let empty = r#"{"winner":"c1","battle_log":[],"battle_description":"c1 wins"}"#;
        assert!(matches!(
            battle(empty, &request),
            Err(EngineError::InvalidOutput(_))
        ));
    }
}
