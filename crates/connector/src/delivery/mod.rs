//! The delivery engine: the durable queue's consumer. Accepted deliveries (rows of the store's
//! `deliveries` table, holding a serialized [`crate::actions::ValidatedAction`]) are claimed
//! under leases, sent to DingTalk step by step within per-app, per-API rate limits, and acked
//! fenced by the lease owner: delivered, retried later with capped exponential backoff and
//! jitter, or failed with DingTalk's code (the dead-letter list).
//!
//! Guarantees (docs/design.md §7): at least once — a delivery is only finished by an ack after
//! DingTalk accepted it, and a crashed instance's leases expire and are taken back; steps
//! already accepted are recorded (fenced) so a retry resumes after them; one delivery of a
//! group is in flight at a time, so a group's messages arrive in acceptance order. It never
//! holds a database transaction across a DingTalk call.
//!
//! Parts: [`classify`] (what to do about an error), [`Backoff`], the rate limiters
//! ([`LocalLimiter`], [`StoreLimiter`] shared through the database), [`run_step`] /
//! [`execute_within_limits`] (steps within the limits, also for the synchronous API path), and
//! [`DeliveryEngine`].
//!
//! Embedding, in outline:
//!
//! ```ignore
//! let notifier = Notifier::default(); // the API calls notifier.notify() after each accept
//! let limiter: Arc<dyn RateLimiter> = match store.dialect() {
//!     "postgres" => Arc::new(StoreLimiter::new(store.clone(), clock.clone(), DEFAULT_MARGIN)),
//!     _ => Arc::new(LocalLimiter::default()),
//! };
//! let engine = DeliveryEngine::start(
//!     EngineConfig { owner: format!("{instance_id}/engine"), ..EngineConfig::default() },
//!     EngineDeps { store, connections, targets, limiter, http, clock, notifier },
//! );
//! // on SIGTERM:
//! engine.shutdown(Duration::from_secs(10)).await;
//! ```
//!
//! The sync path shares the same `limiter` (so sync and async sends count against one quota)
//! and uses a lease owner other than the engine's.

mod ack;
mod backoff;
mod classify;
mod engine;
mod limiter;
mod registry;
mod run;

pub use ack::{Acked, Acker, Attempt};
pub use backoff::{Backoff, BackoffConfig};
pub use classify::{Outcome, classify, classify_execute, outcome_of};
pub use engine::{
    DeliveryEngine, EngineConfig, EngineDeps, EngineHandle, Notifier, ShutdownReport,
};
pub use limiter::{
    DEFAULT_MARGIN, Limited, LocalLimiter, RateKey, RateLimiter, RateScope, StoreLimiter,
    WEBHOOK_PER_MINUTE, route_of,
};
pub use registry::{DEAD_AFTER, Registry, RegistryHandle};
pub use run::{LimitedRunError, StepError, WithinLimits, execute_within_limits, run_step};
