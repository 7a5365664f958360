//! The worker pool: claims due deliveries under leases, runs their steps against DingTalk
//! within the rate limits, and acks each one fenced by its lease.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, field};
use uuid::Uuid;

use super::ack::{Acked, Acker, Attempt};
use super::backoff::BackoffConfig;
use super::classify::{Outcome, classify_execute};
use super::limiter::{Limited, RateLimiter, RateScope};
use super::run::{StepError, run_step};
use crate::actions::{
    ExecuteError, Step, StepContext, StepResult, ValidatedAction, assemble_output,
};
use crate::connections::{ConnectionError, Connections};
use crate::error::{ErrorBody, ErrorCode};
use crate::store::{AttemptOutcome, Clock, Delivery, JsonText, Store, StoreError};
use crate::targets::Targets;

/// How the engine runs. [`Default`] suits a server; tests shorten the times.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Lease owner for every claim of this engine; unique per instance. The sync API path must
    /// use a different owner: [`EngineHandle::shutdown`] releases every lease of this one.
    pub owner: String,
    /// Deliveries worked on at once (different groups; one group is always one at a time).
    pub concurrency: usize,
    /// How long a claim holds a delivery; extended every third of it while the delivery runs,
    /// so only a crashed or stuck instance loses it.
    pub lease: Duration,
    /// How often to look for due work that no notification announced (retries whose time
    /// came, deliveries accepted by other instances, leases that expired).
    pub poll_interval: Duration,
    /// Most deliveries taken by one claim.
    pub batch_size: u32,
    pub backoff: BackoffConfig,
    /// Seed of the backoff jitter (tests); `None` seeds from the OS.
    pub jitter_seed: Option<u64>,
}

impl EngineConfig {
    pub const DEFAULT_CONCURRENCY: usize = 32;
    /// Long enough for a slow send, short enough that a crashed instance's deliveries are
    /// taken back soon.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            owner: format!("engine-{}", Uuid::new_v4()),
            concurrency: Self::DEFAULT_CONCURRENCY,
            lease: Self::DEFAULT_LEASE,
            poll_interval: Duration::from_secs(1),
            batch_size: 64,
            backoff: BackoffConfig::default(),
            jitter_seed: None,
        }
    }
}

/// Wakes the engine at once when a delivery was accepted (instead of at the next poll). Cheap
/// to clone; create one, give it to the API and to [`EngineDeps`].
#[derive(Debug, Clone, Default)]
pub struct Notifier(Arc<Notify>);

impl Notifier {
    pub fn notify(&self) {
        // notify_one keeps a permit when the engine is not waiting, so no wake-up is lost.
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await
    }
}

/// What the engine works with.
#[derive(Clone)]
pub struct EngineDeps {
    pub store: Arc<dyn Store>,
    pub connections: Arc<Connections>,
    pub targets: Arc<Targets>,
    pub limiter: Arc<dyn RateLimiter>,
    /// For `file_url` downloads.
    pub http: crate::fetch::Fetcher,
    /// The store's clock: backoff times and max age are computed in it.
    pub clock: Arc<dyn Clock>,
    pub notifier: Notifier,
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Deliveries still running when the grace period ended (their work was abandoned).
    pub abandoned: usize,
    /// Leases given back to the queue.
    pub released: u64,
}

/// A running engine.
pub struct EngineHandle {
    owner: String,
    notifier: Notifier,
    stop: watch::Sender<Option<Duration>>,
    task: tokio::task::JoinHandle<ShutdownReport>,
}

impl EngineHandle {
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Stops claiming, lets running deliveries finish within `grace`, abandons the rest and
    /// releases every lease this engine still holds, so another instance can take them at once.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        // The dispatcher owns the receiver until it returns; a send error means it already has.
        let _ = self.stop.send(Some(grace));
        match self.task.await {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(error = %e, owner = %self.owner, "delivery engine task failed");
                ShutdownReport {
                    abandoned: 0,
                    released: 0,
                }
            }
        }
    }
}

/// The delivery engine.
pub struct DeliveryEngine;

impl DeliveryEngine {
    /// Starts the dispatcher on the current Tokio runtime.
    pub fn start(config: EngineConfig, deps: EngineDeps) -> EngineHandle {
        let (stop, stop_rx) = watch::channel(None);
        let owner = config.owner.clone();
        let notifier = deps.notifier.clone();
        let worker = Arc::new(Worker {
            acker: Acker::new(
                deps.store.clone(),
                deps.clock.clone(),
                config.backoff.clone(),
                config.jitter_seed,
            ),
            config,
            deps,
            wakes: Mutex::default(),
        });
        let task = tokio::spawn(dispatch(worker, stop_rx));
        EngineHandle {
            owner,
            notifier,
            stop,
            task,
        }
    }
}

struct Worker {
    config: EngineConfig,
    deps: EngineDeps,
    acker: Acker,
    /// When this engine's scheduled retries fall due, so it claims them on time without
    /// polling fast.
    wakes: Mutex<BinaryHeap<Reverse<Instant>>>,
}

async fn dispatch(
    worker: Arc<Worker>,
    mut stop: watch::Receiver<Option<Duration>>,
) -> ShutdownReport {
    let cfg = &worker.config;
    let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let running: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let mut tasks = JoinSet::new();
    tracing::info!(owner = %cfg.owner, concurrency = cfg.concurrency, "delivery engine started");
    'outer: loop {
        while let Some(done) = tasks.try_join_next() {
            report_join(done);
        }
        if stop.borrow().is_some() {
            break;
        }
        let free = slots.available_permits() as u32;
        // Claim once a quarter of the slots is free (or nothing runs), not whenever one is: a
        // claim walks the head of every group with work, so under a backlog one claim per
        // finished delivery was the drain's limit (the peer suite's 100,000 backlog over 1,000
        // groups drained at 111/s). Below saturation the slots are free anyway: no waiting.
        let refill = (cfg.concurrency as u32 / 4).max(1);
        if free > 0 && (free >= refill || tasks.is_empty()) {
            let want = free.min(cfg.batch_size.max(1));
            match worker
                .deps
                .store
                .claim_due(&cfg.owner, cfg.lease, want)
                .await
            {
                Ok(claimed) => {
                    let full = claimed.len() as u32 == want;
                    for d in claimed {
                        // Our own lease expired and came back to us while the first run still
                        // works on it: that run holds the renewed lease and will ack.
                        if !lock(&running).insert(d.id) {
                            continue;
                        }
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            // Cannot happen: we claimed no more than the free permits.
                            lock(&running).remove(&d.id);
                            break;
                        };
                        metrics::gauge!("dtc_queue_claimed").increment(1.0);
                        let w = worker.clone();
                        let running = running.clone();
                        tasks.spawn(async move {
                            let id = d.id;
                            w.run(d).await;
                            lock(&running).remove(&id);
                            metrics::gauge!("dtc_queue_claimed").decrement(1.0);
                            drop(permit);
                        });
                    }
                    if full {
                        continue 'outer;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, owner = %cfg.owner, "claiming deliveries failed");
                    metrics::counter!("dtc_delivery_claim_errors_total").increment(1);
                }
            }
        }
        let wake = worker.next_wake(Instant::now() + cfg.poll_interval);
        tokio::select! {
            changed = stop.changed() => {
                // The handle was dropped without a shutdown: stop, with no grace.
                if changed.is_err() {
                    break;
                }
            }
            _ = worker.deps.notifier.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => report_join(done),
        }
    }
    let grace = stop.borrow().unwrap_or_default();
    let deadline = Instant::now() + grace;
    while !tasks.is_empty() {
        tokio::select! {
            Some(done) = tasks.join_next() => report_join(done),
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    tasks.abort_all();
    // Tasks that finished just before the abort acked normally; only cancelled ones count.
    let mut abandoned = 0;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(()) => {}
            Err(e) if e.is_cancelled() => abandoned += 1,
            Err(e) => tracing::error!(error = %e, "delivery task panicked"),
        }
    }
    // Cancelled tasks could not decrement the gauge themselves.
    metrics::gauge!("dtc_queue_claimed").decrement(abandoned as f64);
    let released = match worker.deps.store.release(&cfg.owner).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, owner = %cfg.owner,
                "releasing leases failed; they return to the queue when they expire");
            0
        }
    };
    tracing::info!(owner = %cfg.owner, abandoned, released, "delivery engine stopped");
    ShutdownReport {
        abandoned,
        released,
    }
}

fn report_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "delivery task panicked; its lease returns to the queue when it expires");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single insert/remove/read: a panic cannot leave it half-done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Another owner holds the delivery now; nothing more may be written for this attempt.
struct LeaseLost;

/// The steps of a delivery DingTalk already accepted, saved after each one (fenced by the
/// lease) so a retry resumes after them instead of sending those parts again.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    completed: usize,
    results: Vec<StepResult>,
    ctx: StepContext,
}

impl Worker {
    /// The earliest scheduled retry still to come, or `poll` if that is sooner. Retries due
    /// by now were just claimed (the caller claims before it waits) and are forgotten.
    fn next_wake(&self, poll: Instant) -> Instant {
        let mut wakes = lock(&self.wakes);
        let now = Instant::now();
        while wakes.peek().is_some_and(|Reverse(at)| *at <= now) {
            wakes.pop();
        }
        match wakes.peek() {
            Some(Reverse(at)) if *at < poll => *at,
            _ => poll,
        }
    }

    fn wake_at(&self, at: Instant) {
        lock(&self.wakes).push(Reverse(at));
    }

    async fn run(&self, d: Delivery) {
        let span = tracing::info_span!(
            "delivery",
            delivery_id = %d.id,
            connection = field::Empty,
            msg_key = field::Empty,
            attempt = d.attempts + 1,
        );
        async {
            let started_at = self.deps.clock.now();
            let acked = match self.keep_lease(d.id, self.attempt(&d)).await {
                Some(Ok(attempt)) => {
                    self.acker
                        .ack(&d, &self.config.owner, started_at, attempt)
                        .await
                }
                Some(Err(LeaseLost)) | None => {
                    metrics::counter!("dtc_delivery_attempts_total", "outcome" => "lease_lost")
                        .increment(1);
                    Acked::NotWritten
                }
            };
            if let Acked::Retrying { delay } = acked {
                // A little late rather than early: the claim compares with the wall clock.
                self.wake_at(Instant::now() + delay + Duration::from_millis(2));
            }
        }
        .instrument(span)
        .await
    }

    /// Runs `work` while extending the lease every third of its duration; `None` if the lease
    /// was lost meanwhile (the work is dropped: another owner has the delivery).
    async fn keep_lease<T>(&self, id: Uuid, work: impl Future<Output = T>) -> Option<T> {
        let lease = self.config.lease;
        let every = lease / 3;
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                _ = tick.tick() => {
                    match self.deps.store.extend_lease(id, &self.config.owner, lease).await {
                        Ok(()) => {}
                        Err(StoreError::LeaseLost { .. }) => {
                            tracing::warn!("lease lost while sending; another owner has the delivery");
                            return None;
                        }
                        // The lease is still valid for two more thirds; try again next tick.
                        Err(e) => tracing::warn!(error = %e, "extending the lease failed"),
                    }
                }
            }
        }
    }

    async fn attempt(&self, d: &Delivery) -> Result<Attempt, LeaseLost> {
        let action: ValidatedAction = match serde_json::from_value(d.input.clone()) {
            Ok(a) => a,
            Err(e) => {
                return Ok(Attempt::Fail(ErrorBody::new(
                    ErrorCode::Internal,
                    format!("the stored input is not a valid action: {e}"),
                )));
            }
        };
        let span = tracing::Span::current();
        if let Some(key) = action.steps().iter().find_map(msg_key) {
            span.record("msg_key", key.as_str());
        }
        let conn = match self
            .deps
            .connections
            .get(&d.connection_id.to_string())
            .await
        {
            Ok(c) => c,
            Err(e) => return Ok(connection_failure(e)),
        };
        span.record("connection", conn.name.as_str());
        if action.connection_kind() != conn.kind {
            return Ok(Attempt::Fail(ErrorBody::invalid(
                "connection",
                format!(
                    "{} needs a {} connection, not {}",
                    action.action(),
                    action.connection_kind().as_str(),
                    conn.kind.as_str()
                ),
            )));
        }
        let (target, scope) = match self
            .deps
            .targets
            .get(&self.deps.connections, &conn)
            .and_then(|t| Ok((t, RateScope::of(&self.deps.connections, &conn)?)))
        {
            Ok(v) => v,
            Err(e) => return Ok(connection_failure(e)),
        };
        let mut progress = match &d.progress {
            None => Progress::default(),
            Some(saved) => match serde_json::from_value::<Progress>(saved.clone()) {
                Ok(p) => p,
                // Starting over could send parts twice; a person should look at it.
                Err(e) => {
                    return Ok(Attempt::Fail(ErrorBody::new(
                        ErrorCode::Internal,
                        format!("saved progress is unreadable: {e}"),
                    )));
                }
            },
        };
        // Webhook sends carry a msgUuid derived from the delivery, so a retry after a timeout
        // (when the first try may have arrived) cannot post the message twice.
        progress.ctx.idempotency_base = Some(d.id.to_string());
        // A reply's way back (held in memory only: it carries the session webhook).
        if action.steps().iter().any(|s| s.reply_to().is_some()) {
            match crate::chat::reply_target(
                self.deps.store.as_ref(),
                &self.deps.connections,
                conn.id,
                &action,
                self.deps.clock.now(),
            )
            .await
            {
                Ok(to) => progress.ctx.reply = to,
                Err(e) => {
                    return Ok(Attempt::Retry {
                        error: ErrorBody::new(ErrorCode::StoreUnavailable, e.to_string()),
                        after: None,
                        outcome: AttemptOutcome::TransientError,
                    });
                }
            }
        }
        let steps = action.steps();
        while progress.completed < steps.len() {
            let step = &steps[progress.completed];
            let key = scope.key_for(step);
            let ran = run_step(
                self.deps.limiter.as_ref(),
                &key,
                step,
                &target,
                &self.deps.http,
                &mut progress.ctx,
                None,
            )
            .await;
            match ran {
                Ok(result) => {
                    progress.results.push(result);
                    progress.completed += 1;
                    if progress.completed < steps.len()
                        && let Some(lost) = self.save_progress(d, &progress).await
                    {
                        return lost;
                    }
                }
                Err(StepError::Limited(e)) => {
                    let (code, after) = match e {
                        Limited::RetryAfter(after) => (ErrorCode::RateLimited, Some(after)),
                        Limited::Unavailable(_) => (ErrorCode::RateLimiterUnavailable, None),
                    };
                    return Ok(Attempt::Retry {
                        error: ErrorBody::new(code, e.to_string()),
                        after,
                        outcome: AttemptOutcome::TransientError,
                    });
                }
                Err(StepError::Execute(e)) => return Ok(self.step_failed(d, &e)),
            }
        }
        Ok(match assemble_output(&action, &progress.results) {
            Some(output) => Attempt::Delivered(JsonText::from(&output)),
            None => Attempt::Fail(ErrorBody::new(
                ErrorCode::Internal,
                "the step results do not match the action's plan",
            )),
        })
    }

    /// `Some` ends the attempt: it cannot go on safely.
    async fn save_progress(
        &self,
        d: &Delivery,
        progress: &Progress,
    ) -> Option<Result<Attempt, LeaseLost>> {
        let value = match serde_json::to_value(progress) {
            Ok(v) => v,
            Err(e) => {
                return Some(Ok(Attempt::Fail(ErrorBody::new(
                    ErrorCode::Internal,
                    format!("progress does not serialize: {e}"),
                ))));
            }
        };
        match self
            .deps
            .store
            .save_progress(d.id, &self.config.owner, &value)
            .await
        {
            Ok(()) => None,
            Err(StoreError::LeaseLost { .. }) => Some(Err(LeaseLost)),
            // The part went out but is not recorded: a retry may send it again (at least once).
            Err(e) => Some(Ok(Attempt::Retry {
                error: ErrorBody::new(ErrorCode::StoreUnavailable, e.to_string()),
                after: None,
                outcome: AttemptOutcome::TransientError,
            })),
        }
    }

    fn step_failed(&self, d: &Delivery, e: &ExecuteError) -> Attempt {
        let error = ErrorBody::from_execute(e);
        match classify_execute(e) {
            Outcome::Retry { after, .. } => Attempt::Retry {
                error,
                after,
                outcome: AttemptOutcome::TransientError,
            },
            Outcome::RefreshToken => self.acker.token_rejected(d, error),
            Outcome::Fail => Attempt::Fail(error),
        }
    }
}

/// A connection that cannot be used: gone or unreadable for good, or the database is down.
fn connection_failure(e: ConnectionError) -> Attempt {
    match e {
        ConnectionError::NotFound { .. } => Attempt::Fail(ErrorBody::new(
            ErrorCode::ConnectionNotFound,
            "the connection was deleted",
        )),
        ConnectionError::Store(e) => Attempt::Retry {
            error: ErrorBody::new(ErrorCode::StoreUnavailable, e.to_string()),
            after: None,
            outcome: AttemptOutcome::TransientError,
        },
        // Secrets sealed with a key this instance does not hold yet (`dtc admin rotate-key`
        // ran while it was up): keep the delivery until it restarts with the new key.
        ConnectionError::Crypto(e) => Attempt::Retry {
            error: ErrorBody::new(ErrorCode::ConnectionKeyUnknown, e.to_string()),
            after: Some(Duration::from_secs(60)),
            outcome: AttemptOutcome::TransientError,
        },
        e => Attempt::Fail(ErrorBody::new(ErrorCode::ConnectionUnusable, e.to_string())),
    }
}

fn msg_key(step: &Step) -> Option<String> {
    match step {
        // A placeholder media id only names the message kind; nothing is sent with it.
        Step::GroupSend { message, .. } | Step::OtoSend { message, .. } => {
            message.to_message(Some("-")).ok().map(|m| m.msg_key())
        }
        _ => None,
    }
}
