//! Durable storage: connections (secrets already sealed), API token hashes, and deliveries — the
//! delivery log and the durable queue in one table.
//!
//! One [`Store`] implementation, [`SqlStore`], serves SQLite (the default, one instance) and
//! PostgreSQL (several instances sharing one queue). Its SQL is written once in
//! `queries/*.sql`, with a per-dialect file in `queries/{sqlite,postgres}/` only where the
//! dialects really differ (the claim); value encodings and transactions differ in [`db`] alone.
//! Migrations stay per dialect (`migrations/{sqlite,postgres}`), keeping PostgreSQL's native
//! types. Both dialects run the same test suite (`tests/store_suite.rs`).
//!
//! Queue rules, the same for both dialects:
//! - A delivery's [`GroupKey`] (a connection's group chat, say) orders it: only the oldest
//!   unfinished delivery of a group can be claimed, and only while no delivery of that group is in
//!   flight under a live lease. Different groups proceed in parallel.
//! - Claims take a lease (`lease_owner`, `lease_expires_at`); an expired lease is taken back by
//!   the next claim. Acks ([`Store::complete_delivery`], [`Store::schedule_retry`],
//!   [`Store::fail_delivery`], [`Store::record_attempt`]) only apply while the caller still owns
//!   the lease; otherwise they fail with [`StoreError::LeaseLost`]. Owners should be unique per
//!   worker (e.g. `<instance uuid>/<worker n>`).
//! - Idempotency keys are scoped to a connection: `(connection_id, idempotency_key)` is unique.
//!   The caller stores a `request_hash` (of action + input) and compares it on a hit, so the same
//!   key reused for a different request is detected rather than answered with the wrong result.
//! - Time comes from an injected [`Clock`], so lease expiry and backoff can be tested without
//!   sleeping. On PostgreSQL each instance's clock is used; instances are assumed NTP-synced to
//!   well within a lease.

mod clock;
mod db;
mod runs;
mod sql;
mod types;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use clock::{Clock, ManualClock, SystemClock};
pub use runs::*;
pub use sql::{SqlStore, lock_sqlite};
pub use types::*;

use crate::error::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was hit, e.g. a connection name already in use.
    #[error("duplicate {what}")]
    Duplicate { what: &'static str },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The row changed since it was read (optimistic concurrency); read it again and retry.
    #[error("{what} was changed concurrently")]
    Conflict { what: &'static str },
    /// The caller no longer holds the lease on this delivery; its ack was not applied.
    #[error("lease on delivery {delivery_id} is no longer held by {owner}")]
    LeaseLost { delivery_id: Uuid, owner: String },
    #[error("delivery {delivery_id} cannot go from {from} to {to}")]
    InvalidTransition {
        delivery_id: Uuid,
        from: DeliveryStatus,
        to: DeliveryStatus,
    },
    /// Another server holds this SQLite database.
    #[error(
        "another dtc serve is using {path}: a SQLite database serves one server at a time (stop \
         the other one, give this one its own --database-url, or use PostgreSQL for several)"
    )]
    InUse { path: String },
    #[error("unsupported database URL (expected sqlite://… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// A value in the database that the code cannot interpret.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the store a URL names — `sqlite://path` (created with its directory if missing) or
/// `postgres://…` — and runs its migrations.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    connect_with_clock(url, Arc::new(SystemClock)).await
}

/// [`connect`] with an injected clock (tests use [`ManualClock`]).
pub async fn connect_with_clock(url: &str, clock: Arc<dyn Clock>) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqlStore::sqlite(url, clock).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(SqlStore::postgres(url, clock).await?))
    } else {
        // Only the scheme: the rest of a URL may hold a password.
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::UnsupportedUrl(format!("{scheme}:…")))
    }
}

/// Everything dtc keeps. Object-safe: use it as `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn dialect(&self) -> &'static str;

    // ---- connections ----

    /// Inserts a connection; [`StoreError::Duplicate`] if the name is taken.
    async fn insert_connection(
        &self,
        id: Uuid,
        fields: &ConnectionFields,
    ) -> StoreResult<ConnectionRecord>;
    async fn get_connection(&self, id: Uuid) -> StoreResult<Option<ConnectionRecord>>;
    async fn get_connection_by_name(&self, name: &str) -> StoreResult<Option<ConnectionRecord>>;
    /// All connections, by name.
    async fn list_connections(&self) -> StoreResult<Vec<ConnectionRecord>>;
    /// Replaces a connection's fields if it was not changed since `expected_updated_at`
    /// ([`StoreError::Conflict`] otherwise; [`StoreError::NotFound`], [`StoreError::Duplicate`]).
    async fn update_connection(
        &self,
        id: Uuid,
        fields: &ConnectionFields,
        expected_updated_at: DateTime<Utc>,
    ) -> StoreResult<ConnectionRecord>;
    /// Whether a connection was deleted.
    async fn delete_connection(&self, id: Uuid) -> StoreResult<bool>;
    /// Key rotation: swaps each connection's sealed secrets in one transaction, each only if it
    /// still holds the value it was re-sealed from; otherwise nothing changes and
    /// [`StoreError::Conflict`] is returned.
    async fn update_sealed_secrets(&self, updates: &[SealedSecretsUpdate]) -> StoreResult<()>;
    /// Records a connection's latest test, replacing the one before.
    async fn put_connection_check(&self, id: Uuid, check: &ConnectionCheck) -> StoreResult<()>;
    /// The group chats of a connection's newest `scan` deliveries, newest first, each once.
    async fn recent_groups(&self, connection_id: Uuid, scan: u32) -> StoreResult<Vec<String>>;
    /// One page of the connection list, each with its last test and last use, and how many
    /// connections match the search in all.
    async fn connection_page(
        &self,
        q: &ConnectionQuery,
    ) -> StoreResult<(Vec<(ConnectionRecord, ConnectionActivity)>, u64)>;
    /// Records a received robot message and the conversation it came from, in one transaction;
    /// `false` when the same `msg_id` was recorded before (a redelivery).
    async fn record_inbound(&self, message: &InboundMessage) -> StoreResult<bool>;
    /// A received message by DingTalk's `msgId`.
    async fn inbound_message(
        &self,
        connection_id: Uuid,
        msg_id: &str,
    ) -> StoreResult<Option<InboundMessage>>;
    /// The conversations a connection's robot has heard from, most recent first.
    async fn list_conversations(&self, connection_id: Uuid)
    -> StoreResult<Vec<ConversationRecord>>;
    /// Takes or renews the Stream socket of a connection for `owner` until `lease` from now;
    /// `false` while another owner's lease runs.
    async fn hold_stream(
        &self,
        connection_id: Uuid,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<bool>;
    async fn release_stream(&self, connection_id: Uuid, owner: &str) -> StoreResult<()>;
    /// Every connection's id, name and kind, by name.
    async fn connection_names(&self) -> StoreResult<Vec<ConnectionName>>;

    // ---- API tokens ----

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> StoreResult<()>;
    async fn find_api_token_by_hash(&self, token_hash: &str)
    -> StoreResult<Option<ApiTokenRecord>>;
    async fn count_api_tokens(&self) -> StoreResult<u64>;
    /// Every token, oldest first (hashes, labels, roles, last use; never a token).
    async fn list_api_tokens(&self) -> StoreResult<Vec<ApiTokenRecord>>;
    /// Whether a token was revoked.
    async fn delete_api_token(&self, id: Uuid) -> StoreResult<bool>;
    /// Records a token's use at `at`.
    async fn touch_api_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()>;
    /// Revoke every token labelled `label` except the one whose hash is `keep_hash`; returns
    /// how many were revoked.
    async fn revoke_api_tokens_labelled(&self, label: &str, keep_hash: &str) -> StoreResult<u64>;

    // ---- deliveries ----

    /// Inserts a delivery, or returns the existing one with the same
    /// `(connection_id, idempotency_key)` (the caller compares `request_hash`).
    async fn insert_delivery(&self, new: &NewDelivery) -> StoreResult<Inserted>;
    /// Inserts several deliveries in one transaction (async accepts batch their commits; split
    /// parts of one message get consecutive seqs). Results are in input order.
    async fn insert_deliveries(&self, new: &[NewDelivery]) -> StoreResult<Vec<Inserted>>;
    async fn find_by_idempotency_key(
        &self,
        connection_id: Uuid,
        idempotency_key: &str,
    ) -> StoreResult<Option<Delivery>>;
    async fn get_delivery(&self, id: Uuid) -> StoreResult<Option<DeliveryDetail>>;
    /// Newest first; pass the page's `next_cursor` back as `filter.before_seq` for the next page.
    async fn list_deliveries(&self, filter: &DeliveryFilter) -> StoreResult<DeliveryPage>;

    /// Claims up to `limit` due deliveries for `owner` for `lease`, respecting per-group order,
    /// taking back expired leases. The returned deliveries are `in_flight`.
    async fn claim_due(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Records an attempt that does not end the claim (e.g. a rejected token before the repeat);
    /// returns the attempt number. Fenced by lease owner.
    async fn record_attempt(
        &self,
        id: Uuid,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> StoreResult<i32>;
    /// Ends a claimed attempt: the status change and what it writes ([`Ack`]), the attempt's
    /// record, and (when a flow step ended) the run's next step, in one transaction. Fenced by
    /// lease owner.
    async fn ack(&self, id: Uuid, owner: &str, ack: Ack<'_>) -> StoreResult<()>;
    /// in_flight → delivered, with DingTalk's result and the final attempt. Fenced.
    async fn complete_delivery(
        &self,
        id: Uuid,
        owner: &str,
        result: &JsonText,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        self.ack(id, owner, Ack::complete(result, attempt)).await
    }
    /// in_flight → retrying, due again at `next_attempt_at`. Fenced.
    async fn schedule_retry(
        &self,
        id: Uuid,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &ErrorBody,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        self.ack(id, owner, Ack::retry(error, next_attempt_at, attempt))
            .await
    }
    /// in_flight → failed (the dead-letter list). Fenced.
    async fn fail_delivery(
        &self,
        id: Uuid,
        owner: &str,
        error: &ErrorBody,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        self.ack(id, owner, Ack::fail(error, attempt)).await
    }
    /// Extends a live lease held by `owner` (a slow send); fenced.
    async fn extend_lease(&self, id: Uuid, owner: &str, lease: Duration) -> StoreResult<()>;
    /// failed → queued, due now, for `POST /v1/deliveries/{id}/retry`.
    async fn retry_failed(&self, id: Uuid) -> StoreResult<Delivery>;
    /// Returns every lease `owner` holds to the queue (graceful shutdown); how many.
    async fn release(&self, owner: &str) -> StoreResult<u64>;

    // ---- instances ----

    /// Register `owner` as alive now, or renew its heartbeat.
    async fn heartbeat(&self, owner: &str) -> StoreResult<()>;
    /// `owner` stopped cleanly.
    async fn deregister(&self, owner: &str) -> StoreResult<()>;
    /// Leases of owners whose last heartbeat is before `cutoff` expire now (the claim then
    /// takes them back), and those owners are forgotten; returns how many leases.
    async fn take_back_dead(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
    /// Every lease expires now: for a database this process alone owns (SQLite, locked), at
    /// start, when whoever held a lease is gone. Returns how many.
    async fn expire_all_leases(&self) -> StoreResult<u64>;
    /// Logs sync requests that already ran (delivered or failed, one attempt each), in one
    /// transaction; they are never claimed.
    async fn record_finished(&self, rows: &[FinishedDelivery]) -> StoreResult<()>;
    /// Saves the steps of a multi-step delivery that DingTalk already accepted, so that a retry
    /// (by any instance) resumes after them. Fenced by lease owner.
    async fn save_progress(
        &self,
        id: Uuid,
        owner: &str,
        progress: &serde_json::Value,
    ) -> StoreResult<()>;

    // ---- rate limits (shared by every instance on one database) ----

    /// GCRA with no burst, in one atomic statement: reserves the next send slot of `key`
    /// (`max(TAT, now)`; the TAT then moves `interval` past it) unless that slot is after
    /// `not_after`, in which case nothing is reserved and the slot is reported. Times come from
    /// this store's clock; several instances must have NTP-synced clocks.
    async fn take_rate_slot(
        &self,
        key: &str,
        interval: Duration,
        not_after: Option<DateTime<Utc>>,
    ) -> StoreResult<RateSlot>;
    /// Nothing of `key` may go out before `until` (DingTalk throttled it anyway).
    async fn push_rate_limit(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()>;

    // ---- flows and runs ----

    /// The flow logic called when a run starts and whenever one of its deliveries ends; set
    /// once at start-up, before runs are started or deliveries acked.
    fn set_run_advance(&self, advance: Arc<dyn RunAdvance>);
    /// Creates the flow (version 1) or stores its next version; the version is kept.
    async fn put_flow(&self, new: &FlowFields) -> StoreResult<FlowRecord>;
    async fn get_flow(&self, name: &str) -> StoreResult<Option<FlowRecord>>;
    /// The document and sealed secrets of one version of a flow.
    async fn get_flow_version(
        &self,
        flow_id: Uuid,
        version: i32,
    ) -> StoreResult<Option<(serde_json::Value, Option<String>)>>;
    /// All flows, by name.
    async fn list_flows(&self) -> StoreResult<Vec<FlowRecord>>;
    /// Key rotation: replaces a flow's sealed hook secrets if they are still `old`; whether
    /// they were.
    async fn swap_flow_secrets(&self, id: Uuid, old: &str, new: &str) -> StoreResult<bool>;
    /// Whether a flow was deleted (with its versions; its runs stay in the log).
    async fn delete_flow(&self, name: &str) -> StoreResult<bool>;
    /// Schedules due at `now`.
    async fn due_flows(&self, now: DateTime<Utc>) -> StoreResult<Vec<FlowRecord>>;
    /// Starts a run in one transaction: the dedupe check, the schedule's fire row, the run and
    /// its first step's deliveries.
    async fn start_run(&self, new: &NewRun) -> StoreResult<RunStarted>;
    /// Advances a run whose step has ended (the sweep; acks advance in their own transaction).
    async fn advance_run(&self, id: Uuid) -> StoreResult<()>;
    async fn get_run(&self, id: Uuid) -> StoreResult<Option<RunRecord>>;
    /// Newest first; pass `next_cursor` back as `filter.before_seq`.
    async fn list_runs(&self, filter: &RunFilter) -> StoreResult<RunPage>;
    /// A run's deliveries, by step and item.
    async fn run_deliveries(&self, id: Uuid) -> StoreResult<Vec<Delivery>>;
    /// Running runs untouched since `cutoff` with nothing of their current step unfinished.
    async fn stalled_runs(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<Uuid>>;
}

pub(crate) fn lease_expiry(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    // A lease longer than chrono can represent is a caller bug; cap it at a day rather than panic.
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::days(1));
    now + lease
}
