//! A faithful local DingTalk for tests, demos and benchmarks: one HTTP port serving both the new
//! (api.dingtalk.com) and old (oapi.dingtalk.com) API families for access tokens, app-robot group
//! and 1:1 messages, media upload and custom webhook robots, with DingTalk's real status codes,
//! error codes, token reuse and expiry, rate limits and lock-outs, plus scripted faults, a
//! movable clock, admin routes under `/_sim/` and a chat page at `/` that shows what was sent.
//! It must not depend on the `dingtalk` client crate or on `connector`: it verifies signatures
//! and `msgParam` with its own code so a bug shared with the client cannot hide. It only ever
//! serves what it is told to listen on (tests bind 127.0.0.1:0) and never calls out.
//!
//! A bare `§N` in this crate refers to the repository's `docs/dingtalk-api.md`.

mod admin;
mod auth;
mod chat;
mod fixture;
mod journal;
mod media;
mod model;
mod msgparam;
mod reply;
mod robot;
mod samples;
mod server;
mod state;
mod stream;
mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use fixture::{
    AppFixture, Fixture, FixtureError, GroupFixture, Limits, SANDBOX_APP_KEY, SANDBOX_APP_SECRET,
    SANDBOX_APP2_KEY, SANDBOX_APP2_SECRET, SANDBOX_DEV_GROUP, SANDBOX_KEYWORD_WEBHOOK_TOKEN,
    SANDBOX_OPS_GROUP, SANDBOX_SALES_GROUP, SANDBOX_WEBHOOK_SECRET, SANDBOX_WEBHOOK_TOKEN,
    UserFixture, WebhookRobotFixture,
};
pub use model::{FaultKind, FaultSpec, ReceivedMessage, RouteName, Stats};
pub use server::{SimHandle, Simulator};
pub use stream::{BOT_TOPIC, StreamStats};

/// Why [`run`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error("simulator I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// What `dtc sim` runs: starts the simulator on `listen` with the given fixture file (or the
/// sandbox fixture), prints the fixture in use and the URLs, and serves until Ctrl-C.
pub async fn run(
    listen: SocketAddr,
    fixture: Option<PathBuf>,
    journal: Option<PathBuf>,
) -> Result<(), RunError> {
    let fixture = match &fixture {
        Some(path) => Fixture::from_path(path)?,
        None => Fixture::sandbox(),
    };
    let handle = Simulator::start_with_journal(fixture.clone(), listen, journal.as_deref()).await?;
    let base = handle.base_url();
    println!("DingTalk simulator listening on {base}");
    println!("  chat page:          {base}/");
    println!("  new API base (api): {base}   e.g. POST {base}/v1.0/oauth2/accessToken");
    println!("  old API base (oapi): {base}  e.g. GET {base}/gettoken, POST {base}/robot/send");
    println!("  admin:              {base}/_sim/messages, /_sim/stats, /_sim/faults");
    println!("fixture in use:\n{}", fixture.to_pretty_json());
    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    handle.shutdown().await;
    Ok(())
}
