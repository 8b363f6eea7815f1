//! Matchmaking: an opponent near the character's rating, never one of the player's own nor
//! one of a player already fought as often as the daily limit allows. Two short walks of the rating index (just above, just below), not a scan.

use sqlx::Row;

use crate::db::Db;

/// Candidates fetched on each side of the rating.
const EACH_SIDE: i64 = 5;
/// The opponent is drawn among this many closest candidates.
const CLOSEST: usize = 3;

/// Picks among the `CLOSEST` candidates nearest to `rating`, using `roll` to choose.
pub fn pick(rating: i64, mut candidates: Vec<(String, i64)>, roll: usize) -> Option<String> {
    candidates.sort_by(|a, b| {
        (a.1 - rating)
            .abs()
            .cmp(&(b.1 - rating).abs())
            .then_with(|| a.0.cmp(&b.0))
    });
    candidates.dedup_by(|a, b| a.0 == b.0);
    candidates.truncate(CLOSEST);
    if candidates.is_empty() {
        return None;
    }
    let i = roll % candidates.len();
    Some(candidates.swap_remove(i).0)
}

/// What matchmaking found for a character.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    /// The player has no character with that id.
    NotYours,
    /// No one else has a character (or every other player was fought enough today).
    Nobody,
    /// The opponent's character id.
    Opponent(String),
}

/// An opponent for `player`'s character `character` near its rating, if anyone else has a
/// character (and `player` has not fought its owner `per_day` times today; 0: no limit).
/// The character itself is read by the same statement: one round trip to the database.
pub async fn find_opponent(
    db: &Db,
    player: &str,
    character: &str,
    per_day: i64,
    now_ms: i64,
) -> Result<Matched, sqlx::Error> {
    let rating = "(SELECT rating FROM characters WHERE id = $2 AND player_id = $1)";
    let fought_enough = "player_id NOT IN (SELECT defender_id FROM battle_pairs \
                         WHERE attacker_id = $1 AND day = $4 AND battles >= $5)";
    // The character, then both walks; none when the character is not the player's (its
    // rating is then NULL, which no rating compares with).
    let sql = format!(
        "SELECT id, rating FROM characters WHERE id = $2 AND player_id = $1 \
         UNION ALL \
         SELECT id, rating FROM (SELECT id, rating FROM characters WHERE rating >= {rating} \
         AND player_id <> $1 AND {fought_enough} ORDER BY rating ASC LIMIT $3) AS above \
         UNION ALL \
         SELECT id, rating FROM (SELECT id, rating FROM characters WHERE rating < {rating} \
         AND player_id <> $1 AND {fought_enough} ORDER BY rating DESC LIMIT $3) AS below"
    );
    let mut mine = None;
    let mut candidates = Vec::new();
    for row in sqlx::query(&sql)
        .bind(player)
        .bind(character)
        .bind(EACH_SIDE)
        .bind(now_ms.div_euclid(86_400_000))
        .bind(if per_day == 0 { i64::MAX } else { per_day })
        .fetch_all(&db.pool)
        .await?
    {
        let id: String = row.try_get("id")?;
        let rating: i64 = row.try_get("rating")?;
        // Candidates are other players' characters: only the first branch's row has this id.
        if id == character {
            mine = Some(rating);
        } else {
            candidates.push((id, rating));
        }
    }
    let Some(rating) = mine else {
        return Ok(Matched::NotYours);
    };
    Ok(
        match pick(rating, candidates, rand::random_range(0..CLOSEST)) {
            Some(id) => Matched::Opponent(id),
            None => Matched::Nobody,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, r: i64) -> (String, i64) {
        (id.to_string(), r)
    }

    #[test]
    fn picks_among_the_closest_ratings() {
        let candidates = vec![
            c("far", 2000),
            c("a", 1010),
            c("b", 990),
            c("c", 1030),
            c("low", 100),
        ];
        let mut seen: Vec<String> = (0..3)
            .filter_map(|roll| pick(1000, candidates.clone(), roll))
            .collect();
        seen.sort();
        assert_eq!(seen, vec!["a", "b", "c"]);
    }

    #[test]
    fn nobody_to_fight_is_none() {
        assert_eq!(pick(1000, Vec::new(), 0), None);
        assert_eq!(
            pick(1000, vec![c("only", 5000)], 2).as_deref(),
            Some("only")
        );
    }
}
