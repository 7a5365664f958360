//! Client-side rate limits that keep DingTalk's own from ever being hit in normal operation:
//! per app and API route the connection's QPS quota (default 20, 1–60), per webhook robot 20
//! messages a minute.
//!
//! Both limiters are GCRA with no burst: each key has a theoretical arrival time (TAT); a
//! request's slot is `max(TAT, now)` and the TAT moves one emission interval past it. The
//! interval is `period / limit × margin`: with `margin` > 1 (default [`DEFAULT_MARGIN`]) any
//! `limit + 1` consecutive requests span more than the period, so no half-open window of that
//! period ever holds more than `limit` of them even when the network shifts single requests by
//! up to `(margin - 1) × period` (20 ms at 1.02) — at the cost of draining at `1 / margin` of the
//! quota (98 %).
//!
//! The margin is spent on the way to DingTalk, so a sender that wakes for its slot later than
//! half of it ([`RateKey::late_tolerance`]: a busy machine, a descheduled task) does not send
//! late, where it could share a window with the next slot's request: it gives the slot up and
//! takes a new one (`dtc_rate_slots_missed_total`).
//!
//! [`LocalLimiter`] keeps TATs in memory (one instance). [`StoreLimiter`] keeps them in the
//! database, updated by one atomic statement per request and never inside a transaction, so
//! several instances sharing a database share each quota; their clocks are assumed NTP-synced
//! (skew between instances acts like network jitter, which the margin absorbs).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::actions::Step;
use crate::connections::{Connection, ConnectionError, ConnectionSecrets, Connections};
use crate::store::{Clock, RateSlot, Store, StoreError};
use secrecy::ExposeSecret;

/// Spacing factor over the exact quota; see the module docs.
pub const DEFAULT_MARGIN: f64 = 1.02;
/// DingTalk locks a custom robot out for 10 minutes after more than 20 messages a minute.
pub const WEBHOOK_PER_MINUTE: u32 = 20;

/// What one limit applies to and how much it allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// `app:<app_key> <route>` or `webhook:<hash of the robot's token> webhook.send`; holds no
    /// secret.
    pub name: String,
    /// Requests allowed per `period`.
    pub limit: u32,
    pub period: Duration,
}

impl RateKey {
    /// One app's one API route (`robot.group_send`, …) at `qps` requests a second.
    pub fn app_api(app_key: &str, route: &str, qps: u32) -> Self {
        RateKey {
            name: format!("app:{app_key} {route}"),
            limit: qps.max(1),
            period: Duration::from_secs(1),
        }
    }

    /// One webhook robot, identified by a hash of its token (two connections to one robot
    /// share its limit), at 20 messages a minute.
    pub fn webhook(token_hash: &str) -> Self {
        RateKey {
            name: format!("webhook:{token_hash} webhook.send"),
            limit: WEBHOOK_PER_MINUTE,
            period: Duration::from_secs(60),
        }
    }

    /// How late after its slot a request may still go out: half the margin's slack over one
    /// period (10 ms at 20 QPS and 1.02), the other half is left for the network.
    pub fn late_tolerance(&self, margin: f64) -> Duration {
        self.period.mul_f64((margin.max(1.0) - 1.0) / 2.0)
    }

    /// The spacing between two requests of this key.
    pub fn interval(&self, margin: f64) -> Duration {
        self.period
            .mul_f64(margin.max(1.0) / f64::from(self.limit.max(1)))
    }
}

/// Which limits a connection's calls count against; resolve once per delivery, then ask
/// [`RateScope::key_for`] for each step.
#[derive(Debug, Clone)]
pub enum RateScope {
    App { app_key: String, qps: u32 },
    Webhook { token_hash: String },
}

impl RateScope {
    pub fn of(connections: &Connections, conn: &Connection) -> Result<Self, ConnectionError> {
        // An app's scope is its key, which is not secret: no need to open the sealed secrets
        // (a decryption per request on the sync path).
        if conn.kind == crate::connections::ConnectionKind::AppRobot {
            return Ok(RateScope::App {
                app_key: conn.app_key.clone().unwrap_or_default(),
                qps: conn.effective_qps_quota(),
            });
        }
        match connections.secrets(conn)? {
            // Secrets are opened by the connection's kind: a webhook's are a webhook's.
            ConnectionSecrets::AppRobot { .. } => Err(ConnectionError::Store(
                crate::store::StoreError::Corrupt("app secrets on a webhook connection".into()),
            )),
            ConnectionSecrets::WebhookRobot { access_token, .. } => {
                let digest = Sha256::digest(access_token.expose_secret().as_bytes());
                // 16 hex digits identify a robot without revealing its token.
                let token_hash = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                Ok(RateScope::Webhook { token_hash })
            }
        }
    }

    /// The key a step's DingTalk call counts against.
    pub fn key_for(&self, step: &Step) -> RateKey {
        match self {
            RateScope::Webhook { token_hash } => RateKey::webhook(token_hash),
            RateScope::App { app_key, qps } => RateKey::app_api(app_key, route_of(step), *qps),
        }
    }
}

/// The DingTalk API route a step calls (the simulator's and the client's `family.method`).
pub fn route_of(step: &Step) -> &'static str {
    match step {
        Step::Upload { .. } => "media.upload",
        Step::GroupSend { .. } => "robot.group_send",
        Step::OtoSend { .. } => "robot.oto_send",
        Step::Query { .. } => "robot.group_query",
        Step::Recall { .. } => "robot.group_recall",
        Step::Webhook { .. } => "webhook.send",
        // UNCONFIRMED: DingTalk documents no limit of its own for session webhooks; they count
        // against the app's per-API quota like any call.
        Step::Reply { .. } => "robot.send_by_session",
    }
}

/// Why a request did not get a slot.
#[derive(Debug, thiserror::Error)]
pub enum Limited {
    /// The next slot is later than the caller's deadline: retry after this long (the sync API
    /// answers 429 with `Retry-After`). Nothing was reserved.
    #[error("rate limit: next slot in {0:?}")]
    RetryAfter(Duration),
    /// The shared limiter's database could not be reached.
    #[error("rate limiter unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

/// A per-key rate limiter.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Waits for `key`'s next slot. With a `deadline`, a slot later than it is not taken:
    /// [`Limited::RetryAfter`] says how long the caller would have had to wait.
    async fn acquire(&self, key: &RateKey, deadline: Option<Instant>) -> Result<(), Limited>;
    /// DingTalk throttled `key` anyway (another system shares the app): nothing of this key
    /// goes out for `retry_after`. Other keys are not affected.
    async fn hold_back(&self, key: &RateKey, retry_after: Duration) -> Result<(), Limited>;
}

/// Whether a sender woke too late for its slot (and must take another); counted.
fn woke_late(key: &RateKey, margin: f64, late: Duration) -> bool {
    let missed = late > key.late_tolerance(margin);
    if missed {
        metrics::counter!("dtc_rate_slots_missed_total").increment(1);
        tracing::debug!(
            key = %key.name,
            late_ms = late.as_millis() as u64,
            "woke too late for a rate slot; taking the next one"
        );
    }
    missed
}

/// In-process GCRA; see the module docs.
#[derive(Debug)]
pub struct LocalLimiter {
    margin: f64,
    tats: Mutex<HashMap<String, Instant>>,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_MARGIN)
    }
}

impl LocalLimiter {
    pub fn new(margin: f64) -> Self {
        LocalLimiter {
            margin,
            tats: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // Each update writes one Instant; a panic elsewhere cannot leave the map inconsistent.
        self.tats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl RateLimiter for LocalLimiter {
    async fn acquire(&self, key: &RateKey, deadline: Option<Instant>) -> Result<(), Limited> {
        let interval = key.interval(self.margin);
        loop {
            let slot = {
                let mut tats = self.lock();
                let now = Instant::now();
                let slot = tats.get(&key.name).map_or(now, |&tat| tat.max(now));
                if let Some(d) = deadline
                    && slot > d
                {
                    return Err(Limited::RetryAfter(slot - now));
                }
                tats.insert(key.name.clone(), slot + interval);
                slot
            };
            tokio::time::sleep_until(slot).await;
            if !woke_late(key, self.margin, Instant::now() - slot) {
                return Ok(());
            }
        }
    }

    async fn hold_back(&self, key: &RateKey, retry_after: Duration) -> Result<(), Limited> {
        let until = Instant::now() + retry_after;
        let mut tats = self.lock();
        let tat = tats.entry(key.name.clone()).or_insert(until);
        *tat = (*tat).max(until);
        Ok(())
    }
}

/// GCRA state in the database, shared by every instance using it; see the module docs.
#[derive(Debug)]
pub struct StoreLimiter {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    margin: f64,
}

impl StoreLimiter {
    /// `clock` must be the store's clock (slots are in its time).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, margin: f64) -> Self {
        StoreLimiter {
            store,
            clock,
            margin,
        }
    }

    fn until(&self, at: DateTime<Utc>) -> Duration {
        (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO)
    }
}

#[async_trait::async_trait]
impl RateLimiter for StoreLimiter {
    async fn acquire(&self, key: &RateKey, deadline: Option<Instant>) -> Result<(), Limited> {
        let not_after = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            self.clock.now() + chrono::Duration::from_std(left).unwrap_or(chrono::Duration::MAX)
        });
        loop {
            let slot = self
                .store
                .take_rate_slot(&key.name, key.interval(self.margin), not_after)
                .await?;
            match slot {
                RateSlot::Granted { at } => {
                    tokio::time::sleep(self.until(at)).await;
                    let late = (self.clock.now() - at).to_std().unwrap_or_default();
                    if !woke_late(key, self.margin, late) {
                        return Ok(());
                    }
                }
                RateSlot::Denied { at } => return Err(Limited::RetryAfter(self.until(at))),
            }
        }
    }

    async fn hold_back(&self, key: &RateKey, retry_after: Duration) -> Result<(), Limited> {
        let until = self.clock.now() + chrono::Duration::from_std(retry_after).unwrap_or_default();
        self.store.push_rate_limit(&key.name, until).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(qps: u32) -> RateKey {
        RateKey::app_api("dingapp", "robot.group_send", qps)
    }

    /// Most requests in any half-open window `[t, t + period)`.
    fn peak(times: &[Instant], period: Duration) -> usize {
        let mut best = 0;
        for (i, &t) in times.iter().enumerate() {
            best = best.max(times[i..].iter().take_while(|&&u| u < t + period).count());
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_quota_in_any_second_and_close_to_it() {
        let limiter = Arc::new(LocalLimiter::default());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire(&key(20), None).await.unwrap();
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        assert_eq!(peak(&times, Duration::from_secs(1)), 20);
        let elapsed = (*times.last().unwrap() - start).as_secs_f64();
        let rate = 199.0 / elapsed;
        assert!((19.0..=20.0).contains(&rate), "drain {rate:.2}/s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_that_wakes_too_late_takes_the_next_slot_instead_of_crowding_it() {
        let limiter = Arc::new(LocalLimiter::default());
        let k = key(20);
        let interval = k.interval(DEFAULT_MARGIN);
        assert_eq!(k.late_tolerance(DEFAULT_MARGIN), Duration::from_millis(10));
        let start = Instant::now();
        limiter.acquire(&k, None).await.unwrap();
        // The second sender's slot is one interval away, but it only runs 200 ms later.
        let late = {
            let (l, k) = (limiter.clone(), k.clone());
            tokio::spawn(async move {
                l.acquire(&k, None).await.unwrap();
                Instant::now()
            })
        };
        tokio::time::advance(Duration::from_millis(200)).await;
        let sent = late.await.unwrap();
        assert_eq!(sent - start, Duration::from_millis(200));
        // It took a slot at the time it really sent, so the next one keeps its distance.
        limiter.acquire(&k, None).await.unwrap();
        assert_eq!(Instant::now() - sent, interval);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_independent() {
        let limiter = LocalLimiter::default();
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire(&key(1), None).await.unwrap();
        }
        let one = Instant::now() - start;
        assert!(one >= Duration::from_secs(4), "{one:?}");
        let other = RateKey::app_api("dingapp", "robot.oto_send", 1);
        let t = Instant::now();
        limiter.acquire(&other, None).await.unwrap();
        assert_eq!(Instant::now(), t, "another route has its own quota");
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_gets_retry_after_instead_of_waiting() {
        let limiter = LocalLimiter::new(1.0);
        let k = key(2);
        limiter.acquire(&k, None).await.unwrap();
        limiter.acquire(&k, None).await.unwrap();
        // The next slot is 0.5 s away.
        let soon = Some(Instant::now() + Duration::from_millis(100));
        match limiter.acquire(&k, soon).await {
            Err(Limited::RetryAfter(d)) => assert_eq!(d, Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
        // Nothing was reserved by the refused request.
        let t = Instant::now();
        let later = Some(t + Duration::from_secs(1));
        limiter.acquire(&k, later).await.unwrap();
        assert_eq!(Instant::now() - t, Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn holding_back_one_key_leaves_the_others_alone() {
        let limiter = LocalLimiter::default();
        let throttled = key(20);
        limiter
            .hold_back(&throttled, Duration::from_secs(1))
            .await
            .unwrap();
        let t = Instant::now();
        limiter
            .acquire(&RateKey::app_api("other", "robot.group_send", 20), None)
            .await
            .unwrap();
        assert_eq!(Instant::now(), t);
        limiter.acquire(&throttled, None).await.unwrap();
        assert_eq!(Instant::now() - t, Duration::from_secs(1));
    }

    #[test]
    fn webhook_robots_get_twenty_a_minute_spaced_evenly() {
        let k = RateKey::webhook("00ff");
        assert_eq!(k.interval(1.0), Duration::from_secs(3));
        assert!(!k.name.contains("token"));
    }
}
