//! Character rows: how they are read, locked and shown.

use hero_protocol::Fighter;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::odds;
use crate::db::{Dialect, Tx};

pub const COLUMNS: &str = "id, player_id, name, wish, description, skill_description, text_source, \
     rarity, level, strength, agility, luck, rating, wins, losses, win_rate_bp, created_at_ms";

/// A summoned character, before it is stored.
pub struct NewCharacter<'a> {
    pub id: &'a str,
    pub player_id: &'a str,
    pub wish: &'a str,
    pub card: &'a hero_engine::CharacterText,
    /// `llm` or `template`.
    pub text_source: &'a str,
    pub rarity: u32,
    /// Strength, agility, luck.
    pub stats: [i64; 3],
}

/// Stores a new level-1 character.
pub async fn insert(tx: &mut Tx, c: &NewCharacter<'_>, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO characters (id, player_id, name, wish, description, skill_description, \
             text_source, rarity, level, strength, agility, luck, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11, $12, $12)",
    )
    .bind(c.id)
    .bind(c.player_id)
    .bind(&c.card.name)
    .bind(c.wish)
    .bind(&c.card.description)
    .bind(&c.card.skill_description)
    .bind(c.text_source)
    .bind(i64::from(c.rarity))
    .bind(c.stats[0])
    .bind(c.stats[1])
    .bind(c.stats[2])
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Raises a character from `level` by one, adding `gain` to each stat; false when its level
/// changed meanwhile.
pub async fn level_up(
    tx: &mut Tx,
    id: &str,
    level: i64,
    gain: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let raised = sqlx::query(
        "UPDATE characters SET level = level + 1, strength = strength + $3, \
             agility = agility + $3, luck = luck + $3, updated_at_ms = $4 \
         WHERE id = $1 AND level = $2",
    )
    .bind(id)
    .bind(level)
    .bind(gain)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(raised.rows_affected() == 1)
}

/// Renames `player`'s character `id`; false when the player has no such character.
pub async fn rename(
    tx: &mut Tx,
    player: &str,
    id: &str,
    name: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE characters SET name = $3, updated_at_ms = $4 WHERE id = $1 AND player_id = $2",
    )
    .bind(id)
    .bind(player)
    .bind(name)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn delete(tx: &mut Tx, player: &str, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM characters WHERE id = $1 AND player_id = $2")
        .bind(id)
        .bind(player)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What an upgrade to the next level costs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpgradeCost {
    pub gold: i64,
    pub exp_potion: i64,
}

/// A character as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CharacterView {
    pub id: String,
    pub player_id: String,
    pub name: String,
    /// The player's summoning prompt.
    pub prompt: String,
    pub description: String,
    pub skill_description: String,
    /// `templates` (the offline summoner) or `llm`.
    pub text_source: String,
    /// 1 to 5 stars.
    pub rarity: i64,
    pub level: i64,
    pub max_level: i64,
    pub strength: i64,
    pub agility: i64,
    pub luck: i64,
    /// Matchmaking rating (Elo, starts at 1000).
    pub rating: i64,
    pub wins: i64,
    pub losses: i64,
    /// Wins / battles in basis points (10000 = every battle won).
    pub win_rate_bp: i64,
    /// Cost of the next level; null at the maximum level.
    pub next_upgrade: Option<UpgradeCost>,
    /// The character's portrait, an SVG drawn from its traits (relative URL, public).
    pub image_url: String,
    pub created_at_ms: i64,
}

impl CharacterView {
    pub fn from_row(r: &AnyRow) -> Result<CharacterView, sqlx::Error> {
        let level: i64 = r.try_get("level")?;
        let id: String = r.try_get("id")?;
        Ok(CharacterView {
            image_url: portrait_url(&id),
            id,
            player_id: r.try_get("player_id")?,
            name: r.try_get("name")?,
            prompt: r.try_get("wish")?,
            description: r.try_get("description")?,
            skill_description: r.try_get("skill_description")?,
            text_source: r.try_get("text_source")?,
            rarity: r.try_get("rarity")?,
            level,
            max_level: odds::MAX_LEVEL,
            strength: r.try_get("strength")?,
            agility: r.try_get("agility")?,
            luck: r.try_get("luck")?,
            rating: r.try_get("rating")?,
            wins: r.try_get("wins")?,
            losses: r.try_get("losses")?,
            win_rate_bp: r.try_get("win_rate_bp")?,
            next_upgrade: (level < odds::MAX_LEVEL).then(|| {
                let (gold, exp_potion) = odds::upgrade_cost(level);
                UpgradeCost { gold, exp_potion }
            }),
            created_at_ms: r.try_get("created_at_ms")?,
        })
    }

    /// The battle snapshot of this character.
    pub fn fighter(&self) -> Fighter {
        let stat = |v: i64| u32::try_from(v).unwrap_or(0);
        Fighter {
            id: self.id.clone(),
            name: self.name.clone(),
            strength: stat(self.strength),
            agility: stat(self.agility),
            luck: stat(self.luck),
            rarity: stat(self.rarity),
            skill_description: self.skill_description.chars().take(500).collect(),
        }
    }
}

/// Where a character's portrait is served (`GET /api/v1/characters/{id}/portrait.svg`).
pub fn portrait_url(id: &str) -> String {
    format!("/api/v1/characters/{id}/portrait.svg")
}

pub use crate::db::Lock;

/// Loads and locks one character inside a write transaction.
pub async fn lock(
    tx: &mut Tx,
    dialect: Dialect,
    id: &str,
    lock: Lock,
) -> Result<Option<CharacterView>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM characters WHERE id = $1{}",
        dialect.lock(lock)
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(CharacterView::from_row)
        .transpose()
}

/// Loads and locks the characters of `ids` (those that exist) inside a write transaction, in
/// one statement that takes the locks in id order, so two such statements never deadlock.
pub async fn lock_all(
    tx: &mut Tx,
    dialect: Dialect,
    ids: &[&str],
    lock: Lock,
) -> Result<Vec<CharacterView>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM characters WHERE id IN ({}) ORDER BY id{}",
        list.join(", "),
        dialect.lock(lock)
    );
    // Batches of every size would each stay prepared; two fighters are the common statement.
    let mut select = if ids.len() <= 2 {
        sqlx::query(&sql)
    } else {
        crate::db::one_off(&sql)
    };
    for id in ids {
        select = select.bind(*id);
    }
    select
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(CharacterView::from_row)
        .collect()
}

/// Loads one character of `player` (None when missing or someone else's).
pub async fn owned<'e, E>(
    executor: E,
    player: &str,
    id: &str,
) -> Result<Option<CharacterView>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM characters WHERE id = $1 AND player_id = $2"
    ))
    .bind(id)
    .bind(player)
    .fetch_optional(executor)
    .await?
    .as_ref()
    .map(CharacterView::from_row)
    .transpose()
}

/// Loads one character, whoever owns it: for what is public about every character (its
/// portrait).
pub async fn public<'e, E>(executor: E, id: &str) -> Result<Option<CharacterView>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!("SELECT {COLUMNS} FROM characters WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(CharacterView::from_row)
        .transpose()
}

/// Whether the character takes part in a battle that has not ended.
pub async fn in_unfinished_battle(tx: &mut Tx, id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT g.battle_id FROM game_battles g JOIN battles b ON b.id = g.battle_id \
         WHERE g.character_id = $1 AND b.status IN ('PENDING', 'RUNNING') LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}
