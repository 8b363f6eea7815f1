//! Keyset paging in SQL, once for every list: the order is a list of key columns (each
//! ascending or descending, the last one unique), and a page after a cursor is the rows
//! strictly after the cursor's key values in that order. The condition is written as the
//! expanded comparison `k1 < $a OR (k1 = $a AND k2 > $b) ...`, which both SQLite and
//! PostgreSQL index and which allows mixed directions.

use sqlx::any::AnyRow;

use super::ApiError;
use super::paging::{PageQuery, int};
use crate::db::Db;

/// One column of a keyset order.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub column: &'static str,
    pub descending: bool,
    /// An integer column (its cursor part must parse as one); text otherwise.
    pub integer: bool,
}

impl Key {
    pub const fn desc_int(column: &'static str) -> Key {
        Key {
            column,
            descending: true,
            integer: true,
        }
    }
    pub const fn desc_text(column: &'static str) -> Key {
        Key {
            column,
            descending: true,
            integer: false,
        }
    }
    pub const fn asc_int(column: &'static str) -> Key {
        Key {
            column,
            descending: false,
            integer: true,
        }
    }
    pub const fn asc_text(column: &'static str) -> Key {
        Key {
            column,
            descending: false,
            integer: false,
        }
    }
}

/// A value of a key taken from a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Int(i64),
    Text(String),
}

/// A list query: `select` (up to `FROM ...`), equality filters, and the keyset order.
pub struct ListQuery<'a> {
    pub select: &'a str,
    /// `column = value` conditions.
    pub filters: &'a [(&'static str, &'a str)],
    pub keys: &'a [Key],
}

impl ListQuery<'_> {
    /// The SQL of a page: with `after`, only rows after the cursor.
    pub fn sql(&self, after: bool) -> String {
        let mut conditions: Vec<String> = self
            .filters
            .iter()
            .enumerate()
            .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
            .collect();
        let first = self.filters.len() + 1;
        if after {
            let mut alternatives = Vec::with_capacity(self.keys.len());
            for (i, key) in self.keys.iter().enumerate() {
                let mut terms: Vec<String> = self.keys[..i]
                    .iter()
                    .enumerate()
                    .map(|(j, k)| format!("{} = ${}", k.column, first + j))
                    .collect();
                let op = if key.descending { "<" } else { ">" };
                terms.push(format!("{} {op} ${}", key.column, first + i));
                alternatives.push(format!("({})", terms.join(" AND ")));
            }
            conditions.push(format!("({})", alternatives.join(" OR ")));
        }
        let order: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{} {}", k.column, if k.descending { "DESC" } else { "ASC" }))
            .collect();
        let limit = first + if after { self.keys.len() } else { 0 };
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        format!(
            "{}{filter} ORDER BY {} LIMIT ${limit}",
            self.select,
            order.join(", ")
        )
    }

    /// The key values of a cursor's first parts; 422 for a cursor we did not issue.
    pub fn decode(&self, parts: &[String]) -> Result<Vec<KeyValue>, ApiError> {
        let bad = || ApiError::Unprocessable("cursor is not valid".into());
        if parts.len() < self.keys.len() {
            return Err(bad());
        }
        self.keys
            .iter()
            .zip(parts)
            .map(|(key, part)| {
                if key.integer {
                    int(part).map(KeyValue::Int)
                } else if part.is_empty() || part.len() > 128 || part.chars().any(char::is_control)
                {
                    Err(bad())
                } else {
                    Ok(KeyValue::Text(part.clone()))
                }
            })
            .collect()
    }

    /// Fetches up to `limit + 1` rows (the extra one says there is a next page) after
    /// `after` (the first page without it).
    pub async fn fetch(
        &self,
        db: &Db,
        after: Option<&[KeyValue]>,
        limit: i64,
    ) -> Result<Vec<AnyRow>, ApiError> {
        let sql = self.sql(after.is_some());
        let mut query = sqlx::query(&sql);
        for (_, value) in self.filters {
            query = query.bind(*value);
        }
        for value in after.unwrap_or_default() {
            query = match value {
                KeyValue::Int(n) => query.bind(*n),
                KeyValue::Text(s) => query.bind(s.clone()),
            };
        }
        Ok(query.bind(limit + 1).fetch_all(&db.pool).await?)
    }

    /// One page's rows for `page` whose cursor has `parts` parts (the keys first); also
    /// returns the cursor's parts for callers that carry more than keys (a rank).
    pub async fn page(
        &self,
        db: &Db,
        page: &PageQuery,
        parts: usize,
    ) -> Result<(Vec<AnyRow>, Option<Vec<String>>), ApiError> {
        let limit = page.limit()?;
        let cursor = page.cursor(parts)?;
        let after = cursor.as_deref().map(|c| self.decode(c)).transpose()?;
        Ok((self.fetch(db, after.as_deref(), limit).await?, cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [Key; 3] = [
        Key::desc_int("wins"),
        Key::desc_int("win_rate_bp"),
        Key::asc_text("id"),
    ];

    #[test]
    fn first_page_and_after_a_cursor() {
        let q = ListQuery {
            select: "SELECT id FROM characters",
            filters: &[("player_id", "p")],
            keys: &KEYS,
        };
        assert_eq!(
            q.sql(false),
            "SELECT id FROM characters WHERE player_id = $1 \
             ORDER BY wins DESC, win_rate_bp DESC, id ASC LIMIT $2"
        );
        assert_eq!(
            q.sql(true),
            "SELECT id FROM characters WHERE player_id = $1 AND ((wins < $2) OR \
             (wins = $2 AND win_rate_bp < $3) OR (wins = $2 AND win_rate_bp = $3 AND id > $4)) \
             ORDER BY wins DESC, win_rate_bp DESC, id ASC LIMIT $5"
        );
    }

    #[test]
    fn cursors_with_control_characters_or_bad_numbers_are_refused() {
        let q = ListQuery {
            select: "SELECT id FROM players",
            filters: &[],
            keys: &KEYS,
        };
        let parts = |a: &str, b: &str, c: &str| vec![a.to_owned(), b.to_owned(), c.to_owned()];
        assert!(q.decode(&parts("3", "10", "abc")).is_ok());
        assert!(q.decode(&parts("3", "10", "a\0c")).is_err());
        assert!(q.decode(&parts("x", "10", "abc")).is_err());
        assert!(q.decode(&parts("3", "10", "")).is_err());
        assert!(q.decode(&parts("3", "10", "abc")[..2]).is_err());
    }
}
