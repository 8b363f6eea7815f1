//! The one error body every service answers with.
//!
//! We send `{"error": {"code", "message"}, "detail": message}`: `error` is our shape, `detail`
//! is what FastAPI clients read. Decoding accepts either.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// FastAPI's field: a string, or a list of validation problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error: Some(ErrorDetail {
                code: code.into(),
                message: message.clone(),
            }),
            detail: Some(serde_json::Value::String(message)),
        }
    }

    /// The human-readable reason, whichever shape the peer used.
    pub fn message(&self) -> String {
        if let Some(e) = &self.error {
            return e.message.clone();
        }
        match &self.detail {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "no reason given".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastapi_detail_is_read() {
        let b: ErrorBody = serde_json::from_str(r#"{"detail":"Node at capacity"}"#).unwrap();
        assert_eq!(b.message(), "Node at capacity");
    }

    #[test]
    fn our_shape_carries_both() {
        let v = serde_json::to_value(ErrorBody::new("capacity", "busy")).unwrap();
        assert_eq!(v["error"]["code"], "capacity");
        assert_eq!(v["detail"], "busy");
    }
}
