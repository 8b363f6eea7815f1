//! The end-to-end tests, one binary with a module per area. Each starts the real
//! `hero-aggregator` and `hero-node` binaries (build them first: `cargo build --workspace
//! --bins`), and each database test runs on SQLite and on PostgreSQL (`on_both_databases!`).
//! One area: `cargo test -p hero-tests --test e2e trust::`.

#![expect(
    clippy::unwrap_used,
    reason = "test bodies run through on_both_databases!, which clippy does not see as tests, \
              and helpers fail loudly on a missing JSON field"
)]

mod abuse;
mod api_document;
mod deployment;
mod engines;
mod game_auth;
mod game_authz;
mod game_journey;
mod game_ledger;
mod hedging;
mod ladder_replicas;
mod liars;
mod live_events;
mod logins;
mod network;
mod operations;
mod read_cache;
mod registration;
mod restart;
mod trust;
mod web;
