//! Running steps within the rate limits: take the call's slot first, and when DingTalk
//! throttles anyway, hold back that (app, API) key. Shared by the engine and the synchronous
//! API path ([`execute_within_limits`]).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::classify::{Outcome, classify_execute};
use super::limiter::{Limited, RateKey, RateLimiter, RateScope};
use crate::actions::{
    ExecuteError, ReplyTarget, Step, StepContext, StepResult, Target, ValidatedAction,
    assemble_output, execute_read_step, read_step_file,
};

/// DingTalk's advice after a QPS limit without a hint: wait a second (docs/dingtalk-api.md §5).
const DEFAULT_HOLD_BACK: Duration = Duration::from_secs(1);

/// Why a step did not run to success.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// No slot before the deadline (or the shared limiter is down); nothing was sent.
    #[error(transparent)]
    Limited(#[from] Limited),
    #[error(transparent)]
    Execute(#[from] ExecuteError),
}

/// Takes `key`'s slot (waiting at most until `deadline`), runs the step, and holds the key
/// back if DingTalk throttled it.
pub async fn run_step(
    limiter: &dyn RateLimiter,
    key: &RateKey,
    step: &Step,
    target: &Target,
    http: &crate::fetch::Fetcher,
    ctx: &mut StepContext,
    deadline: Option<Instant>,
) -> Result<StepResult, StepError> {
    // An app's first call, and the first after its token expires, fetches a token first. Done
    // before taking the slot, so that the call does not go out late: a call late by more than
    // the limiter's margin shares DingTalk's one-second window with the 20 slots after it.
    if let Target::App { client, .. } = target {
        client
            .access_token()
            .await
            .map_err(|error| ExecuteError::DingTalk {
                error,
                completed_parts: 0,
            })?;
    }
    // Likewise an upload's file: read (downloaded) before the slot.
    let file = read_step_file(step, http).await?;
    limiter.acquire(key, deadline).await?;
    // Boxed: the call's future is large; unboxed, every future that awaits this one (up to the
    // request's handler) is as large, and each is copied as it is made.
    match Box::pin(execute_read_step(step, file, target, http, ctx)).await {
        Ok(r) => Ok(r),
        Err(e) => {
            if let Outcome::Retry {
                after,
                throttled: true,
            } = classify_execute(&e)
            {
                // Someone else shares this app's quota: slow this (app, API) down, no other.
                if let Err(err) = limiter
                    .hold_back(key, after.unwrap_or(DEFAULT_HOLD_BACK))
                    .await
                {
                    tracing::warn!(error = %err, key = %key.name, "could not hold back a throttled key");
                }
                metrics::counter!("dtc_dingtalk_throttled_total").increment(1);
            }
            Err(e.into())
        }
    }
}

/// Why [`execute_within_limits`] stopped; `completed_parts` messages went out before, and
/// `key` is the limit the failing step counted against.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct LimitedRunError {
    pub error: StepError,
    pub completed_parts: usize,
    pub key: RateKey,
}

/// In process, only DingTalk's transient failures are retried: a step held back by the limiter
/// already waited until its deadline.
impl dingtalk::Retryable for StepError {
    fn is_retryable(&self) -> bool {
        matches!(self, StepError::Execute(ExecuteError::DingTalk { error, .. }) if error.is_retryable())
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            StepError::Execute(ExecuteError::DingTalk { error, .. }) => error.retry_after(),
            _ => None,
        }
    }
}

/// How [`execute_within_limits`] runs one request.
#[derive(Clone, Copy)]
pub struct WithinLimits<'a> {
    pub scope: &'a RateScope,
    pub limiter: &'a dyn RateLimiter,
    pub http: &'a crate::fetch::Fetcher,
    /// The latest time to wait for a rate-limit slot.
    pub deadline: Option<Instant>,
    pub retry: &'a dingtalk::RetryPolicy,
    pub request_id: &'a str,
    /// Where a `reply` step goes ([`crate::chat::reply_target`]).
    pub reply: Option<&'a ReplyTarget>,
}

/// [`crate::actions::execute`] within the rate limits, for the synchronous API path: each
/// DingTalk call waits for its slot until `deadline` (past it, [`Limited::RetryAfter`]: answer
/// 429 with `Retry-After`), and a step that fails transiently is retried on its own by `retry`
/// (the one in-process loop, [`dingtalk::RetryPolicy::run`]) — never the steps before it, so a
/// split message does not repeat its first parts.
/// `request_id` seeds the webhook `msgUuid`s, so a retried webhook send cannot post twice.
pub async fn execute_within_limits(
    action: &ValidatedAction,
    target: &Target,
    how: WithinLimits<'_>,
) -> Result<Value, LimitedRunError> {
    let WithinLimits {
        scope,
        limiter,
        http,
        deadline,
        retry,
        request_id,
        reply,
    } = how;
    let mut ctx = StepContext {
        idempotency_base: Some(request_id.to_owned()),
        reply: reply.cloned(),
        ..StepContext::default()
    };
    let mut results = Vec::with_capacity(action.steps().len());
    let mut completed_parts = 0;
    for step in action.steps() {
        let key = scope.key_for(step);
        // Each try works on a copy of the context; the successful one's copy is kept.
        let key_ref = &key;
        let ran = retry
            .run(|| {
                let mut tried = ctx.clone();
                async move {
                    let r =
                        run_step(limiter, key_ref, step, target, http, &mut tried, deadline).await;
                    r.map(|r| (r, tried))
                }
            })
            .await;
        match ran {
            Ok((r, after)) => {
                ctx = after;
                completed_parts += usize::from(step.is_send());
                results.push(r);
            }
            Err(error) => {
                return Err(LimitedRunError {
                    error,
                    completed_parts,
                    key,
                });
            }
        }
    }
    Ok(assemble_output(action, &results).expect("every planned step produced its result"))
}
