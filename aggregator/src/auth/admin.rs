//! The admin check shared by every admin endpoint: the [`Admin`] extractor.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::secrets::secrets_match;
use crate::http::ApiError;
use crate::http::bearer::bearer;

/// Who may call admin endpoints.
#[derive(Clone, Default)]
pub struct AdminSettings {
    /// `Authorization: Bearer <token>`; admin endpoints are off without one.
    pub token: Option<String>,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl AdminSettings {
    /// Admin endpoints need `Authorization: Bearer <admin token>`; they are off without one.
    pub fn check(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = self.token.as_deref() else {
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
}

/// A request that presented the admin token; a handler taking `_: Admin` is admin-only.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    std::sync::Arc<AdminSettings>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let admin: std::sync::Arc<AdminSettings> = axum::extract::FromRef::from_ref(state);
        admin.check(&parts.headers)?;
        Ok(Admin)
    }
}
