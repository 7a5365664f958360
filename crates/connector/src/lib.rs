//! The product core of dtc: connections with their secrets encrypted at rest, storage (SQLite by
//! default, PostgreSQL for several instances), and — as they land — the action catalog, the
//! delivery engine, flows and the REST API. The `dtc` binary is a thin shell over this crate.
//!
//! It must not hold DingTalk protocol details (those belong to the `dingtalk` crate), must not
//! hold a database transaction across a network call, and must never log, return or store a
//! secret in clear text.

pub mod actions;
pub mod admin;
pub mod api;
pub mod app;
pub mod chat;
pub mod connections;
pub mod console;
pub mod delivery;
pub mod error;
pub mod fetch;
pub mod flows;
pub mod probe;
pub mod schema;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod store;
pub mod targets;
pub mod telemetry;
