//! Flows and runs in the store. A run moves on in the transaction that records its previous
//! step's end: when a run's delivery is acked delivered or failed, the same transaction locks
//! the run, asks the [`RunAdvance`] what comes next (pure: the flow's logic, rendering the next
//! step from what is stored) and writes it — the next step's deliveries and the run's new state.
//! A server killed at any point leaves either the step unfinished (the queue retries it) or the
//! next step queued; the sweep ([`super::Store::stalled_runs`]) covers a run whose advance
//! could not be written at all.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::types::{ConnectionRecord, Delivery, LogPage, NewDelivery, Timestamps};

/// A stored flow (its current version).
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRecord {
    pub id: Uuid,
    pub version: i32,
    pub fields: FlowFields,
    pub times: Timestamps,
}

/// A flow as applied: created at version 1, or the next version of the flow of that name.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowFields {
    pub name: String,
    pub trigger_kind: String,
    /// The flow document, secrets replaced by `"<set>"`.
    pub document: Value,
    /// The webhook auth secrets, sealed.
    pub sealed_secrets: Option<String>,
    /// Schedules: when it is next due.
    pub next_fire_at: Option<DateTime<Utc>>,
}

super::types::text_enum! {
    RunStatus { Running => "running", Succeeded => "succeeded", Failed => "failed" }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub id: Uuid,
    pub seq: i64,
    pub flow: RunFlow,
    pub progress: RunProgress,
    pub times: Timestamps,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How far a run has come.
#[derive(Clone, Debug, PartialEq)]
pub struct RunProgress {
    pub status: RunStatus,
    /// The step whose deliveries are out; the number of steps once finished.
    pub step_index: i32,
    /// `trigger`, `vars` and `steps` (each finished step's result), as templates read them.
    pub context: Value,
    pub error: Option<Value>,
}

/// The flow version a run runs.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFlow {
    pub id: Uuid,
    pub name: String,
    pub version: i32,
    pub trigger_kind: String,
}

/// A run to start.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub id: Uuid,
    pub flow: RunFlow,
    pub context: Value,
    /// With a key, a run of the same flow and key started within `dedupe_window` is answered
    /// instead of starting another.
    pub dedupe_key: Option<String>,
    pub dedupe_window: std::time::Duration,
    /// A scheduled fire: at most one run per (flow, due time), and the schedule moves on.
    pub fire: Option<ScheduleFire>,
}

#[derive(Clone, Copy, Debug)]
pub struct ScheduleFire {
    /// The due time this run is for.
    pub fire_at: DateTime<Utc>,
    /// The schedule's due time as it was read (moved only if still that).
    pub was_due: DateTime<Utc>,
    pub next_due: Option<DateTime<Utc>>,
}

/// How a start ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStarted {
    Started(RunRecord),
    /// The same notification within the window: that run.
    Duplicate(RunRecord),
    /// Another instance fired this due time already.
    AlreadyFired,
}

#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub flow: Option<String>,
    pub status: Option<RunStatus>,
    pub page: LogPage,
}

#[derive(Clone, Debug)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    pub next_cursor: Option<i64>,
}

/// What an advance sees: the run (locked), its flow version's document, its deliveries so far
/// and the connections now.
#[derive(Debug)]
pub struct RunState<'a> {
    pub run: &'a RunRecord,
    /// `None` when the flow was deleted since the run started.
    pub document: Option<&'a Value>,
    pub deliveries: &'a [Delivery],
    pub connections: &'a [ConnectionRecord],
    pub now: DateTime<Utc>,
}

/// What an advance writes.
#[derive(Debug, Clone)]
pub struct RunChange {
    pub progress: RunProgress,
    /// The next step's deliveries.
    pub deliveries: Vec<NewDelivery>,
}

/// The flow logic the store calls inside the transaction that ends a run's step. Pure and
/// quick (it renders templates under a budget); `None` when there is nothing to do yet (other
/// items of the step are still out).
pub trait RunAdvance: Send + Sync + std::fmt::Debug {
    fn advance(&self, state: &RunState<'_>) -> Option<RunChange>;
}
