//! hero-aggregator: registers AI nodes, settles battles by strict-majority vote over them,
//! keeps battles as durable work, and serves the HTTP API.

pub mod app;
pub mod auth;
pub mod battles;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod db;
pub mod events;
pub mod game;
pub mod http;
pub mod ladder;
pub mod ledger;
pub mod live;
mod local;
pub mod nodes;
mod ops;
pub mod router;
pub mod scheduler;
pub mod state;
pub mod supervisor;
pub mod telemetry;
pub mod web;

pub use app::Application;
