//! The one ack path: how an attempt on a delivery ends — delivered, retried later, or failed —
//! written fenced by the lease owner, with the error record in the API's shape. The delivery
//! engine and the synchronous API path (for requests with an `Idempotency-Key`) both end their
//! attempts here, so a delivery's history reads the same whoever made it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::backoff::{Backoff, BackoffConfig};
use crate::error::ErrorBody;
use crate::store::{
    AttemptOutcome, AttemptRecord, Clock, Delivery, DeliveryStatus, FinishedDelivery, JsonText,
    NewDelivery, Store, StoreError,
};

/// How one attempt ended.
#[derive(Debug)]
pub enum Attempt {
    /// DingTalk accepted every step; the action's output, as the store keeps it.
    Delivered(JsonText),
    /// Worth trying again, not before `after` (DingTalk's or the limiter's wait).
    Retry {
        error: ErrorBody,
        after: Option<Duration>,
        outcome: AttemptOutcome,
    },
    /// Failed for good.
    Fail(ErrorBody),
}

impl Attempt {
    /// The delivery-log row of a request that ran at once without an `Idempotency-Key` (it
    /// was never queued, so it is logged finished, in the same shape as everything else).
    pub fn into_log_row(
        self,
        new: NewDelivery,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    ) -> FinishedDelivery {
        let (status, outcome, result, error) = match self {
            Attempt::Delivered(output) => (
                DeliveryStatus::Delivered,
                AttemptOutcome::Success,
                Some(output),
                None,
            ),
            Attempt::Retry { error, outcome, .. } => {
                (DeliveryStatus::Failed, outcome, None, Some(error))
            }
            Attempt::Fail(error) => (
                DeliveryStatus::Failed,
                AttemptOutcome::PermanentError,
                None,
                Some(error),
            ),
        };
        FinishedDelivery {
            id: new.id,
            connection_id: new.connection_id,
            action: new.action,
            group_key: new.group_key,
            input: new.input,
            status,
            result,
            last_error: error.clone(),
            attempt: AttemptRecord {
                started_at,
                finished_at,
                outcome,
                error,
            },
        }
    }
}

/// What the ack did.
#[derive(Debug, Clone, PartialEq)]
pub enum Acked {
    Delivered,
    Failed,
    /// Scheduled again after `delay`.
    Retrying {
        delay: Duration,
    },
    /// Nothing was written: the lease is held by someone else (or the write failed, and the
    /// lease's expiry will return the delivery to the queue).
    NotWritten,
}

/// Ends attempts. Cheap to clone.
#[derive(Clone)]
pub struct Acker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    backoff: Arc<Backoff>,
}

impl Acker {
    /// `seed` makes the backoff jitter reproducible (tests).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        backoff: BackoffConfig,
        seed: Option<u64>,
    ) -> Self {
        Acker {
            store,
            clock,
            backoff: Arc::new(Backoff::new(backoff, seed)),
        }
    }

    pub fn backoff(&self) -> &BackoffConfig {
        self.backoff.config()
    }

    /// The attempt after a step failed because the access token was rejected (even after the
    /// client's own refresh): retried a few times, counted in the record itself, then failed.
    pub fn token_rejected(&self, d: &Delivery, mut error: ErrorBody) -> Attempt {
        let before = d.last_error.as_ref().map_or(0, |l| l.token_rejections);
        error.token_rejections = before + 1;
        if error.token_rejections > self.backoff.config().token_retries {
            Attempt::Fail(error)
        } else {
            Attempt::Retry {
                error,
                after: None,
                outcome: AttemptOutcome::TokenRejected,
            }
        }
    }

    /// Writes how attempt number `d.attempts + 1`, begun at `started_at` by `owner`, ended. A
    /// retry past the policy's attempts or age fails instead, saying so.
    pub async fn ack(
        &self,
        d: &Delivery,
        owner: &str,
        started_at: DateTime<Utc>,
        attempt: Attempt,
    ) -> Acked {
        let store = &self.store;
        let now = self.clock.now();
        let record = |outcome, error: Option<&ErrorBody>| AttemptRecord {
            started_at,
            finished_at: now,
            outcome,
            error: error.cloned(),
        };
        let number = u32::try_from(d.attempts).unwrap_or(0) + 1;
        let (written, acked, outcome) = match attempt {
            Attempt::Delivered(output) => (
                store
                    .complete_delivery(d.id, owner, &output, &record(AttemptOutcome::Success, None))
                    .await,
                Acked::Delivered,
                AttemptOutcome::Success,
            ),
            Attempt::Fail(error) => (
                store
                    .fail_delivery(
                        d.id,
                        owner,
                        &error,
                        &record(AttemptOutcome::PermanentError, Some(&error)),
                    )
                    .await,
                Acked::Failed,
                AttemptOutcome::PermanentError,
            ),
            Attempt::Retry {
                mut error,
                after,
                outcome,
            } => {
                let age = (now - d.times.created_at).to_std().unwrap_or_default();
                if self.backoff.exhausted(number, age) {
                    error.retryable = false;
                    error.message = format!(
                        "{}; gave up after {number} attempts over {}s",
                        error.message,
                        age.as_secs()
                    );
                    let r = store
                        .fail_delivery(d.id, owner, &error, &record(outcome, Some(&error)))
                        .await;
                    (r, Acked::Failed, outcome)
                } else {
                    let delay = self.backoff.delay(number, after);
                    let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    let r = store
                        .schedule_retry(d.id, owner, at, &error, &record(outcome, Some(&error)))
                        .await;
                    if r.is_ok() {
                        tracing::info!(delay_ms = delay.as_millis() as u64, error = %error, "delivery will be retried");
                    }
                    (r, Acked::Retrying { delay }, outcome)
                }
            }
        };
        match written {
            Ok(()) => {
                metrics::counter!("dtc_delivery_attempts_total", "outcome" => outcome.as_str())
                    .increment(1);
                let finished = match acked {
                    Acked::Delivered => Some("delivered"),
                    Acked::Failed => Some("failed"),
                    _ => None,
                };
                if let Some(outcome) = finished {
                    metrics::counter!("dtc_deliveries_total", "outcome" => outcome).increment(1);
                    tracing::info!(outcome, attempts = number, "delivery finished");
                }
                acked
            }
            Err(StoreError::LeaseLost { .. }) => {
                metrics::counter!("dtc_delivery_attempts_total", "outcome" => "lease_lost")
                    .increment(1);
                tracing::warn!("ack refused: the lease expired and another owner has the delivery");
                Acked::NotWritten
            }
            Err(e) => {
                metrics::counter!("dtc_delivery_attempts_total", "outcome" => "ack_failed")
                    .increment(1);
                tracing::error!(error = %e, "ack failed; the delivery is retried when its lease expires");
                Acked::NotWritten
            }
        }
    }
}
