//! HTTP plumbing shared by every domain: the error type, the JSON extractor, bearer tokens,
//! metrics middleware, the OpenAPI document.

pub mod bearer;
pub mod error;
pub mod json;
pub mod metrics;
pub mod openapi;

pub use error::ApiError;
pub use json::ApiJson;
