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
    let sql = format!(
        "INSERT INTO game_battles (battle_id, player_id, character_id, opponent_character_id, \
             side, energy_spent, created_at_ms) VALUES {}",
        crate::db::values_placeholders(tx, 2, 7)
    );
    let mut insert = sqlx::query(&sql);
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
            .bind(battle_id.to_owned())
            .bind(p.clone())
            .bind(c.clone())
            .bind(o.clone())
            .bind(side.as_str())
            .bind(spent)
            .bind(now);
    }
    insert.execute(&mut **tx).await?;
    Ok(())
}
