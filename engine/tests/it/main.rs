//! The engines from the outside, one test binary: the Sim engine (`sim`), and the LLM engines
//! against local fakes of their providers (`gemini`, `openai`).

mod gemini;
mod openai;
mod sim;

/// Tiny waits, so retry tests stay fast.
const FAST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(5);
