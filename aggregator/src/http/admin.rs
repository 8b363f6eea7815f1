//! The admin token check shared by every admin endpoint.

use axum::http::HeaderMap;

use super::ApiError;
use super::bearer::{bearer, secrets_match};
use crate::state::AppState;

/// Admin endpoints need `Authorization: Bearer <admin token>`; they are off without one.
pub fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.settings.admin_token.as_deref() else {
        return Err(ApiError::Forbidden(
            "admin endpoints are disabled: start the aggregator with --admin-token".into(),
        ));
    };
    match bearer(headers) {
        Some(given) if secrets_match(given, expected) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("admin token is not valid".into())),
        None => Err(ApiError::Unauthorized(
            "needs the admin token (Authorization: Bearer ...)".into(),
        )),
    }
}
