//! The game's rows of a player battle: one per side (`game_battles`).

use super::Side;
use crate::db::Tx;
use crate::game::characters::store::CharacterView;

/// The attacker's and the defender's side of a new battle.
pub async fn insert_sides(
    tx: &mut Tx,
    battle_id: &str,
    [mine, opponent]: [&CharacterView; 2],
    cost: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    insert_sides_many(tx, &[(battle_id, [mine, opponent])], cost, now).await
}

/// Both sides of each of these new battles, in one INSERT.
pub async fn insert_sides_many(
    tx: &mut Tx,
    battles: &[(&str, [&CharacterView; 2])],
    cost: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    if battles.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO game_battles (battle_id, player_id, character_id, opponent_character_id, \
             side, energy_spent, created_at_ms) VALUES {}",
        crate::db::values_placeholders(tx, 2 * battles.len(), 7)
    );
    // Batches of every size would each stay prepared; one battle is the common statement.
    let mut insert = if battles.len() == 1 {
        sqlx::query(&sql)
    } else {
        crate::db::one_off(&sql)
    };
    for (battle_id, [mine, opponent]) in battles {
        for (p, c, o, side, spent) in [
            (
                &mine.player_id,
                &mine.id,
                &opponent.id,
                Side::Attacker,
                cost,
            ),
            (
                &opponent.player_id,
                &opponent.id,
                &mine.id,
                Side::Defender,
                0,
            ),
        ] {
            insert = insert
                .bind(battle_id.to_string())
                .bind(p.clone())
                .bind(c.clone())
                .bind(o.clone())
                .bind(side.as_str())
                .bind(spent)
                .bind(now);
        }
    }
    insert.execute(&mut **tx).await?;
    Ok(())
}
