//! Keyset paging for lists: `?cursor=&limit=`, an opaque cursor naming the last row seen.

use axum::extract::FromRequestParts;
use axum::extract::rejection::QueryRejection;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::ApiError;

/// axum's query extractor with our error shape for a bad query string.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Unprocessable(rejection.body_text())
    }
}

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// `?cursor=&limit=` of a list endpoint.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::Unprocessable(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
        }
    }

    /// The cursor's parts, or `None` for the first page; 422 for a cursor we did not issue.
    pub fn cursor(&self, parts: usize) -> Result<Option<Vec<String>>, ApiError> {
        let Some(cursor) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let bad = || ApiError::Unprocessable("cursor is not valid".into());
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let fields: Vec<String> = text.split('|').map(str::to_owned).collect();
        if fields.len() != parts {
            return Err(bad());
        }
        Ok(Some(fields))
    }
}

/// Builds the cursor for the row `fields`.
pub fn cursor(fields: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(fields.join("|"))
}

/// Parses one integer part of a cursor.
pub fn int(part: &str) -> Result<i64, ApiError> {
    part.parse()
        .map_err(|_| ApiError::Unprocessable("cursor is not valid".into()))
}

/// A rank carried in a cursor: a count of rows already shown, never negative or absurd.
pub fn rank(part: &str) -> Result<i64, ApiError> {
    int(part)
        .ok()
        .filter(|r| (0..=1_000_000_000).contains(r))
        .ok_or_else(|| ApiError::Unprocessable("cursor is not valid".into()))
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` fetched rows: the extra row only says there is more.
    pub fn from_rows(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let q = PageQuery {
            cursor: Some(cursor(&["12", "abc"])),
            limit: None,
        };
        assert_eq!(q.cursor(2).unwrap().unwrap(), vec!["12", "abc"]);
        assert!(q.cursor(3).is_err());
        let bad = PageQuery {
            cursor: Some("***".into()),
            limit: Some(0),
        };
        assert!(bad.cursor(2).is_err());
        assert!(bad.limit().is_err());
        assert_eq!(PageQuery::default().limit().unwrap(), DEFAULT_LIMIT);
    }

    #[test]
    fn the_extra_row_means_more() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(
            (page.items, page.next_cursor),
            (vec![1, 2], Some("2".into()))
        );
        let last = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }
}
