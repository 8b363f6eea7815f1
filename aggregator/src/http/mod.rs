//! HTTP plumbing shared by every domain: the error type, the JSON extractor, bearer tokens,
//! metrics middleware, the OpenAPI document.

pub mod bearer;
pub mod error;
pub mod etag;
pub mod idempotency;
pub mod input;
pub mod ip_limit;
pub mod json;
pub mod keyset;
pub mod metrics;
pub mod net;
pub mod openapi;
pub mod paging;
pub mod spend;

pub use error::ApiError;
pub use json::ApiJson;
