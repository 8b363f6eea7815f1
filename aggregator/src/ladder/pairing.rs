//! The `pair-battles` task (hourly at :00 by default): pairs the eligible entries of the
//! active season by closeness of rank points and schedules a battle for each pair, with its
//! betting window. Nobody fights themself, no pair meets twice in a row, an entry with a
//! battle still to come or an idle player is skipped, and an odd one out waits for the next
//! slot. Each battle keeps a snapshot of both fighters as paired: bettors bet on what fights.

use sqlx::{FromRow, Row};

use super::Ladder;
use super::seasons;
use crate::db::{Lock, Tx};
use crate::game::characters::store as characters;

/// An entry that may be paired.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Candidate {
    pub player_id: String,
    pub character_id: String,
    pub rank_points: i64,
    pub last_opponent_id: Option<String>,
}

/// Pairs `candidates` (sorted by rank points, highest first): each entry meets the closest
/// one below it that it did not meet last time. Returns index pairs (higher-ranked first).
pub fn pair(candidates: &[Candidate]) -> Vec<(usize, usize)> {
    let mut taken = vec![false; candidates.len()];
    let mut pairs = Vec::new();
    for i in 0..candidates.len() {
        if taken[i] {
            continue;
        }
        let a = &candidates[i];
        let partner = (i + 1..candidates.len()).find(|&j| {
            let b = &candidates[j];
            !taken[j]
                && a.player_id != b.player_id
                && a.last_opponent_id.as_deref() != Some(b.player_id.as_str())
                && b.last_opponent_id.as_deref() != Some(a.player_id.as_str())
        });
        if let Some(j) = partner {
            taken[i] = true;
            taken[j] = true;
            pairs.push((i, j));
        }
    }
    pairs
}

pub struct PairBattles {
    pub ladder: Ladder,
}

#[async_trait::async_trait]
impl crate::scheduler::Task for PairBattles {
    fn name(&self) -> &'static str {
        "pair-battles"
    }

    async fn run(&self, tx: &mut Tx, slot_ms: i64, now_ms: i64) -> anyhow::Result<String> {
        let Some(season) = seasons::active(&mut **tx).await? else {
            return Ok("no active season".into());
        };
        // Locked: pairings of two slots (two replicas catching up) run one after the other and
        // each sees the other's battles, and a season being closed is not paired meanwhile.
        let dialect = self.ladder.ledger.dialect;
        let still_active: Option<String> = sqlx::query_scalar(&format!(
            "SELECT status FROM seasons WHERE id = $1 AND status = 'active'{}",
            dialect.lock(Lock::Update)
        ))
        .bind(&season.id)
        .fetch_optional(&mut **tx)
        .await?;
        if still_active.is_none() {
            return Ok(format!("season {} closed meanwhile", season.id));
        }
        if slot_ms < season.starts_at_ms {
            return Ok(format!(
                "season {} starts at {}",
                season.id, season.starts_at_ms
            ));
        }
        let args = &self.ladder.args;
        let starts = slot_ms + args.ladder_battle_delay;
        if starts - args.betting_closes_before <= now_ms {
            return Ok(format!(
                "too late: battles of this slot would start at {starts} with betting closed"
            ));
        }
        if starts >= season.ends_at_ms {
            return Ok(format!(
                "season {} ends before a battle could start",
                season.id
            ));
        }
        let rows = sqlx::query(
            "SELECT r.player_id, r.character_id, r.rank_points, r.last_opponent_id \
             FROM ladder_ranks r \
             JOIN characters c ON c.id = r.character_id AND c.player_id = r.player_id \
             JOIN players p ON p.id = r.player_id \
             WHERE r.season_id = $1 AND p.last_login_at_ms >= $2 \
               AND NOT EXISTS (SELECT 1 FROM scheduled_battles s \
                   WHERE s.season_id = $1 AND s.status IN ('scheduled', 'running') \
                   AND (s.red_player_id = r.player_id OR s.blue_player_id = r.player_id)) \
             ORDER BY r.rank_points DESC, r.player_id",
        )
        .bind(&season.id)
        .bind(now_ms - args.ladder_idle_after)
        .fetch_all(&mut **tx)
        .await?;
        let candidates = rows
            .iter()
            .map(Candidate::from_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let pairs = pair(&candidates);
        for &(i, j) in &pairs {
            let (red, blue) = (&candidates[i], &candidates[j]);
            let mut fighters = Vec::with_capacity(2);
            for c in [red, blue] {
                let found = characters::owned(&mut **tx, &c.player_id, &c.character_id).await?;
                fighters.extend(found.map(|c| c.fighter()));
            }
            let fighters = serde_json::to_string(&fighters)
                .map_err(|e| anyhow::anyhow!("fighters snapshot: {e}"))?;
            sqlx::query(
                "INSERT INTO scheduled_battles (id, season_id, slot_ms, red_player_id, \
                     red_character_id, blue_player_id, blue_character_id, starts_at_ms, \
                     betting_opens_at_ms, betting_closes_at_ms, created_at_ms, fighters_json) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&season.id)
            .bind(slot_ms)
            .bind(&red.player_id)
            .bind(&red.character_id)
            .bind(&blue.player_id)
            .bind(&blue.character_id)
            .bind(starts)
            .bind(starts - args.betting_opens_before)
            .bind(starts - args.betting_closes_before)
            .bind(now_ms)
            .bind(fighters)
            .execute(&mut **tx)
            .await?;
            for (me, other) in [(red, blue), (blue, red)] {
                sqlx::query(
                    "UPDATE ladder_ranks SET last_opponent_id = $3, updated_at_ms = $4 \
                     WHERE season_id = $1 AND player_id = $2",
                )
                .bind(&season.id)
                .bind(&me.player_id)
                .bind(&other.player_id)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
            }
        }
        let entries: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM ladder_ranks WHERE season_id = $1")
                .bind(&season.id)
                .fetch_one(&mut **tx)
                .await?
                .try_get("n")?;
        Ok(format!(
            "scheduled {} battles for {starts} from {} available of {entries} entries",
            pairs.len(),
            candidates.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(player: &str, points: i64, last: Option<&str>) -> Candidate {
        Candidate {
            player_id: player.into(),
            character_id: format!("{player}-hero"),
            rank_points: points,
            last_opponent_id: last.map(Into::into),
        }
    }

    #[test]
    fn neighbours_meet_unless_they_just_did() {
        let list = [
            c("a", 1200, Some("b")),
            c("b", 1190, Some("a")),
            c("c", 1000, None),
            c("d", 900, None),
        ];
        assert_eq!(pair(&list), vec![(0, 2), (1, 3)]);
        let fresh = [c("a", 1200, None), c("b", 1190, None), c("c", 1000, None)];
        assert_eq!(pair(&fresh), vec![(0, 1)]);
        // Two players who just met and nobody else: no battle.
        assert!(pair(&[c("a", 1, Some("b")), c("b", 1, Some("a"))]).is_empty());
    }

    proptest! {
        #[test]
        fn pairs_are_disjoint_new_and_never_self(
            entries in proptest::collection::vec((0i64..2000, proptest::option::of(0usize..30)), 0..30)
        ) {
            let mut list: Vec<Candidate> = entries
                .iter()
                .enumerate()
                .map(|(i, (points, last))| Candidate {
                    player_id: format!("p{i:02}"),
                    character_id: format!("c{i:02}"),
                    rank_points: *points,
                    last_opponent_id: last.map(|l| format!("p{l:02}")),
                })
                .collect();
            list.sort_by(|a, b| b.rank_points.cmp(&a.rank_points).then(a.player_id.cmp(&b.player_id)));
            let pairs = pair(&list);
            let mut seen = std::collections::HashSet::new();
            for (i, j) in &pairs {
                prop_assert!(i < j);
                prop_assert!(seen.insert(*i) && seen.insert(*j));
                let (a, b) = (&list[*i], &list[*j]);
                prop_assert_ne!(&a.player_id, &b.player_id);
                prop_assert_ne!(a.last_opponent_id.as_ref(), Some(&b.player_id));
                prop_assert_ne!(b.last_opponent_id.as_ref(), Some(&a.player_id));
            }
            // Maximal: no two unpaired entries could still have met.
            let free: Vec<usize> = (0..list.len()).filter(|k| !seen.contains(k)).collect();
            for (x, &i) in free.iter().enumerate() {
                for &j in &free[x + 1..] {
                    let (a, b) = (&list[i], &list[j]);
                    prop_assert!(
                        a.last_opponent_id.as_ref() == Some(&b.player_id)
                            || b.last_opponent_id.as_ref() == Some(&a.player_id)
                    );
                }
            }
        }
    }
}
