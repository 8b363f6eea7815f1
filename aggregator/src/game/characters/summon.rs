//! `POST /api/v1/characters`: summon a character from the player's prompt.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hero_engine::{CharacterText, summon_from_templates};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::odds::{self, MAX_SUMMON_POWER, SUMMON_PROMPT_COST};
use super::store::{self, CharacterView, NewCharacter};
use crate::auth::{Bucket, CurrentPlayer};
use crate::game::quests::{self, QuestKind};
use crate::http::error::ApiResult;
use crate::http::idempotency::{self, IdempotencyKey};
use crate::http::openapi::ErrorResponse;
use crate::http::spend::spend;
use crate::http::{ApiError, ApiJson};
use crate::ledger::{Change, LedgerError, Resource};
use crate::state::AppState;

/// Longest summoning prompt, in characters.
pub const MAX_PROMPT_CHARS: usize = 500;

/// `POST /api/v1/characters` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SummonRequest {
    /// What the player wishes for, 1–500 characters.
    pub prompt: String,
    /// prompt_power to spend on better rarity odds, 0–10 (default 0).
    #[serde(default)]
    pub power: u32,
}

/// 409 when the player holds less prompt or prompt power than the summon costs.
async fn can_pay(state: &AppState, player: &str, power: u32) -> ApiResult<()> {
    let (prompt, prompt_power): (i64, i64) =
        sqlx::query_as("SELECT prompt, prompt_power FROM players WHERE id = $1")
            .bind(player)
            .fetch_optional(&state.db.pool)
            .await?
            .ok_or(LedgerError::NoPlayer)?;
    for (resource, have, need) in [
        (Resource::Prompt, prompt, SUMMON_PROMPT_COST),
        (Resource::PromptPower, prompt_power, i64::from(power)),
    ] {
        if have < need {
            return Err(LedgerError::Insufficient {
                resource: resource.as_str(),
                have,
                need,
            }
            .into());
        }
    }
    Ok(())
}

fn check(body: &SummonRequest) -> Result<(), ApiError> {
    let chars = body.prompt.trim().chars().count();
    if chars == 0 || chars > MAX_PROMPT_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "prompt must be 1-{MAX_PROMPT_CHARS} characters"
        )));
    }
    if body
        .prompt
        .chars()
        .any(|c| (c.is_control() && c != '\n') || crate::http::input::is_hidden_format(c))
    {
        return Err(ApiError::Unprocessable(
            "prompt must not contain control, bidirectional or zero-width characters".into(),
        ));
    }
    if body.power > MAX_SUMMON_POWER {
        return Err(ApiError::Unprocessable(format!(
            "power must be between 0 and {MAX_SUMMON_POWER}"
        )));
    }
    Ok(())
}

/// The character's text: from the configured LLM summoner, or from the templates when there
/// is none or it fails. Returns the card and its source.
async fn write_card(state: &AppState, wish: &str, rarity: u32) -> (CharacterText, &'static str) {
    if let Some(summoner) = &state.summoner {
        match summoner.summon(wish, rarity).await {
            Ok(card) => {
                let card = card.trimmed();
                match card.check() {
                    Ok(()) => return (card, "llm"),
                    Err(e) => {
                        tracing::warn!(error = %e, "summoner wrote an invalid card; using templates")
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "summoner failed; using templates"),
        }
    }
    (
        summon_from_templates(wish, rarity, rand::random()),
        "templates",
    )
}

#[utoipa::path(
    post, path = "/api/v1/characters", tag = "characters",
    request_body = SummonRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response instead of charging twice")),
    responses(
        (status = 201, description = "Summoned; costs 1 prompt (+ `power` prompt_power)", body = CharacterView),
        (status = 409, description = "Not enough prompt or prompt_power", body = ErrorResponse),
        (status = 422, description = "Bad prompt or power, or the key was used for another request", body = ErrorResponse),
        (status = 429, description = "More than the hourly summon limit", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn summon(
    State(state): State<AppState>,
    player: CurrentPlayer,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<SummonRequest>,
) -> ApiResult<Response> {
    check(&body)?;
    let request = idempotency::Request::new(&player.id, &key, "POST /api/v1/characters", &body);
    // A duplicate waits here for the first, then replays its answer: one LLM call, and the
    // summon limit counted once.
    let _running = state.in_flight.enter(&player.id, &key).await;
    // A read, not a write transaction: on SQLite that would queue behind every writer.
    if let Some(replay) = request.replay(&state.db.pool).await? {
        return Ok(replay);
    }
    // A player who cannot pay is told so before the limit counts the summon and before the
    // LLM is asked (the spend below checks again, in its transaction).
    can_pay(&state, &player.id, body.power).await?;
    player.limit(&state, Bucket::Summons).await?;
    let wish = body.prompt.trim();
    let rarity = odds::roll_rarity(body.power, rand::random_range(0..100));
    let stats = odds::base_stats(
        rarity,
        std::array::from_fn(|_| rand::random_range(0..=odds::STAT_SPREAD)),
    );
    let (card, source) = write_card(&state, wish, rarity).await;
    let now = state.clock.now_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let ledger = state.game.ledger;
    let (player, body, id, card) = (&player, &body, &id, &card);
    // The limit was counted above, before the LLM was asked: a replay is answered before it.
    let response = spend(
        &state.db,
        &request,
        now,
        StatusCode::CREATED,
        || async { Ok(()) },
        |mut tx| async move {
            quests::progress(&mut tx, &player.id, QuestKind::Summon, 1, now).await?;
            let spend = |resource, delta, reason| Change {
                player: &player.id,
                resource,
                delta,
                reason,
                reference: Some(id),
            };
            ledger
                .apply(
                    &mut tx,
                    spend(Resource::Prompt, -SUMMON_PROMPT_COST, "summon"),
                    now,
                )
                .await?;
            if body.power > 0 {
                let power = spend(
                    Resource::PromptPower,
                    -i64::from(body.power),
                    "summon_power",
                );
                ledger.apply(&mut tx, power, now).await?;
            }
            let character = NewCharacter {
                id,
                player_id: &player.id,
                wish,
                card,
                text_source: source,
                rarity,
                stats,
            };
            store::insert(&mut tx, &character, now).await?;
            let view = store::owned(&mut *tx, &player.id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("summoned character vanished"))
                })?;
            Ok((tx, view))
        },
    )
    .await?;
    tracing::info!(player.id = %player.id, character.id = %id, rarity, source, "character summoned");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_and_power_are_checked() {
        let ok = SummonRequest {
            prompt: "a fire mage".into(),
            power: 3,
        };
        assert!(check(&ok).is_ok());
        for bad in [
            SummonRequest {
                prompt: "  ".into(),
                power: 0,
            },
            SummonRequest {
                prompt: "x".repeat(501),
                power: 0,
            },
            SummonRequest {
                prompt: "bell\u{7}".into(),
                power: 0,
            },
            SummonRequest {
                prompt: "ok".into(),
                power: 11,
            },
        ] {
            assert!(check(&bad).is_err(), "{bad:?}");
        }
    }
}
