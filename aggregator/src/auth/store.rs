//! Player accounts and their devices: created at sign-up with the seed's starting resources
//! (ledger credits), loaded as the profile every login answers with.

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::db::Tx;
use crate::ledger::{Change, Ledger, Resource, energy};

/// What a new player starts with (the seed's defaults).
pub const STARTING_RESOURCES: [(Resource, i64); 5] = [
    (Resource::Gold, 1000),
    (Resource::Prompt, 10),
    (Resource::PromptPower, 5),
    (Resource::ExpPotion, 100),
    (Resource::Energy, 100),
];
pub const MAX_ENERGY: i64 = 100;
/// Creates a player with a generated nickname; the starting resources are ledger credits.
pub async fn create(
    tx: &mut Tx,
    ledger: &Ledger,
    login_method: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::new_v4();
    let nickname = format!("Hero-{}", &id.simple().to_string()[..10]);
    let id = id.to_string();
    sqlx::query(
        "INSERT INTO players (id, nickname, nickname_key, login_method, gold, prompt, \
             prompt_power, exp_potion, energy, max_energy, energy_updated_at_ms, created_at_ms, \
             last_login_at_ms) VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, $5, $6, $6, $6)",
    )
    .bind(&id)
    .bind(&nickname)
    .bind(nickname_key(&nickname))
    .bind(login_method)
    .bind(MAX_ENERGY)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    let credits: Vec<Change<'_>> = STARTING_RESOURCES
        .iter()
        .map(|&(resource, delta)| Change {
            player: &id,
            resource,
            delta,
            reason: "signup",
            reference: None,
        })
        .collect();
    ledger.credit_many(tx, &credits, now_ms).await?;
    Ok(id)
}

/// A player's own profile and balances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlayerView {
    pub id: String,
    pub nickname: String,
    /// Whether the one allowed nickname change was used.
    pub nickname_changed: bool,
    pub login_method: String,
    /// The linked wallet (EIP-55), if any.
    pub wallet_address: Option<String>,
    pub gold: i64,
    pub prompt: i64,
    pub prompt_power: i64,
    pub exp_potion: i64,
    /// Energy now, regeneration included.
    pub energy: i64,
    pub max_energy: i64,
    /// When the next point of energy arrives (null at the maximum).
    pub next_energy_at_ms: Option<i64>,
    pub wins: i64,
    pub losses: i64,
    pub created_at_ms: i64,
}

/// Loads a player's profile, with energy regenerated up to `now_ms` (nothing is written).
pub async fn load<'e, E>(
    executor: E,
    id: &str,
    regen_ms: i64,
    now_ms: i64,
) -> Result<Option<PlayerView>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let Some(r) = sqlx::query(
        "SELECT id, nickname, nickname_changed, login_method, gold, prompt, prompt_power, \
             exp_potion, energy, max_energy, energy_updated_at_ms, wins, losses, created_at_ms, \
             (SELECT subject FROM player_logins l WHERE l.player_id = players.id \
                 AND l.kind = 'web3') AS wallet_address \
         FROM players WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let max: i64 = r.try_get("max_energy")?;
    let (energy, since) = energy::regenerate(
        r.try_get("energy")?,
        max,
        r.try_get("energy_updated_at_ms")?,
        now_ms,
        regen_ms,
    );
    Ok(Some(PlayerView {
        id: r.try_get("id")?,
        nickname: r.try_get("nickname")?,
        nickname_changed: r.try_get::<i64, _>("nickname_changed")? == 1,
        login_method: r.try_get("login_method")?,
        wallet_address: r
            .try_get::<Option<String>, _>("wallet_address")?
            .map(|a| crate::auth::logins::display_address(&a)),
        gold: r.try_get("gold")?,
        prompt: r.try_get("prompt")?,
        prompt_power: r.try_get("prompt_power")?,
        exp_potion: r.try_get("exp_potion")?,
        energy,
        max_energy: max,
        next_energy_at_ms: energy::next_point_at(energy, max, since, regen_ms),
        wins: r.try_get("wins")?,
        losses: r.try_get("losses")?,
        created_at_ms: r.try_get("created_at_ms")?,
    }))
}

/// What nicknames are unique by: case folded (upper, then lower case), so `ZΣ`, `zσ` and
/// `zς`, or `Straße` and `STRASSE`, are one name. (Lower case alone keeps `ς` and `σ`
/// apart.)
pub fn nickname_key(nickname: &str) -> String {
    nickname.to_uppercase().to_lowercase()
}

/// Changes the nickname, once; `Ok(false)` when it was changed before.
pub async fn rename_once(tx: &mut Tx, id: &str, nickname: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE players SET nickname = $2, nickname_key = $3, nickname_changed = 1 \
         WHERE id = $1 AND nickname_changed = 0",
    )
    .bind(id)
    .bind(nickname)
    .bind(nickname_key(nickname))
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A device login: its id and the hash of its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub player_id: String,
    pub secret_hash: String,
}

/// Stores a new device of `player` with its secret's hash.
pub async fn add_device(
    tx: &mut Tx,
    id: &str,
    player: &str,
    secret_hash: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO devices (id, player_id, secret_hash, created_at_ms, last_login_at_ms) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id)
    .bind(player)
    .bind(secret_hash)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn device(tx: &mut Tx, id: &str) -> Result<Option<Device>, sqlx::Error> {
    sqlx::query_as("SELECT player_id, secret_hash FROM devices WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Records a login through device `id` of `player`.
pub async fn touch_login(
    tx: &mut Tx,
    id: &str,
    player: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE devices SET last_login_at_ms = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE players SET last_login_at_ms = $2 WHERE id = $1")
        .bind(player)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_resources_are_the_seeds() {
        let total: Vec<i64> = STARTING_RESOURCES.iter().map(|(_, n)| *n).collect();
        assert_eq!(total, vec![1000, 10, 5, 100, 100]);
    }
}
