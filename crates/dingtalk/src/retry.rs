//! The one retry story, for every caller of DingTalk:
//!
//! - *which* failures to retry is decided where an error is classified ([`Error::is_retryable`],
//!   from the table in [`crate::codes`]);
//! - *how long* to wait is [`RetryPolicy::delay_with`]: capped exponential backoff with full
//!   jitter, never shorter than the wait DingTalk advises;
//! - *in process*, [`RetryPolicy::run`] is the loop (`dtc send`, the connector's synchronous
//!   path). The connector's delivery engine schedules its retries in its durable queue with the
//!   same policy and the same delay.
//!
//! The client itself never retries, except the one token refresh.

use crate::error::Error;
use std::time::Duration;

/// A failure that may be worth repeating.
pub trait Retryable {
    /// Whether repeating the same call later may succeed.
    fn is_retryable(&self) -> bool;
    /// The shortest wait before repeating it, if one was asked for.
    fn retry_after(&self) -> Option<Duration>;
}

impl Retryable for Error {
    fn is_retryable(&self) -> bool {
        Error::is_retryable(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        Error::retry_after(self)
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    /// The cap of the first retry's delay; it doubles with each attempt.
    pub base_delay: Duration,
    /// The largest delay the backoff picks by itself. An in-process loop also never waits
    /// longer than this: when DingTalk asks for more, [`RetryPolicy::run`] gives up and the
    /// caller reports the error with its `retry_after`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// For a caller that waits: four attempts within a few seconds.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (counting from 1): `unit` (in `[0, 1)`,
    /// the jitter) of `min(max_delay, base_delay · 2^(attempt-1))`, so retries of many calls
    /// that failed together spread out; never shorter than `hint`, DingTalk's advised wait, even
    /// beyond `max_delay` (retrying a locked-out webhook robot sooner only extends the lock-out).
    pub fn delay_with(&self, attempt: u32, hint: Option<Duration>, unit: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(30));
        let jittered = exp.min(self.max_delay).mul_f64(unit.clamp(0.0, 1.0));
        match hint {
            Some(h) => jittered.max(h),
            None => jittered,
        }
    }

    /// [`RetryPolicy::delay_with`] with fresh randomness.
    pub fn delay(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        self.delay_with(attempt, hint, rand::random())
    }

    /// Whether another attempt may follow failed attempt number `attempt`.
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// How long to wait before trying again after failed attempt number `attempt`, or `None`
    /// to stop: the error is permanent, attempts are used up, or DingTalk asks for a longer wait
    /// than `max_delay` (an in-process caller should not block that long).
    pub fn next_wait(&self, attempt: u32, error: &impl Retryable) -> Option<Duration> {
        if !error.is_retryable() || !self.allows_another(attempt) {
            return None;
        }
        let wait = self.delay(attempt, error.retry_after());
        (wait <= self.max_delay).then_some(wait)
    }

    /// Runs `op` until it succeeds, fails for good, or [`RetryPolicy::next_wait`] says stop.
    pub async fn run<T, E, Fut>(&self, mut op: impl FnMut() -> Fut) -> Result<T, E>
    where
        E: Retryable + std::fmt::Display,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.next_wait(attempt, &e) {
                    Some(wait) => {
                        tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error = %e, "retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_with_full_jitter() {
        let p = policy();
        for attempt in 1..=20u32 {
            let cap = Duration::from_secs(1 << (attempt - 1).min(6)).min(Duration::from_secs(60));
            assert_eq!(p.delay_with(attempt, None, 0.0), Duration::ZERO);
            assert_eq!(p.delay_with(attempt, None, 0.5), cap / 2);
            assert!(p.delay_with(attempt, None, 0.999_999) < cap);
        }
    }

    #[test]
    fn dingtalks_wait_is_a_floor_even_beyond_the_cap() {
        let p = policy();
        assert_eq!(
            p.delay_with(1, Some(Duration::from_secs(2)), 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay_with(1, Some(Duration::from_secs(600)), 0.9),
            Duration::from_secs(600)
        );
    }

    struct Failure {
        retryable: bool,
        after: Option<Duration>,
    }

    impl Retryable for Failure {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failure")
        }
    }

    #[test]
    fn an_in_process_caller_stops_at_permanent_errors_the_last_attempt_or_a_long_wait() {
        let p = policy();
        let transient = Failure {
            retryable: true,
            after: None,
        };
        assert!(p.next_wait(1, &transient).is_some());
        assert!(p.next_wait(12, &transient).is_none(), "attempts used up");
        let permanent = Failure {
            retryable: false,
            after: None,
        };
        assert!(p.next_wait(1, &permanent).is_none());
        let locked_out = Failure {
            retryable: true,
            after: Some(Duration::from_secs(600)),
        };
        assert!(p.next_wait(1, &locked_out).is_none(), "beyond max_delay");
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_transient_failures_then_succeeds() {
        let p = RetryPolicy::default();
        let mut calls = 0;
        let out: Result<u32, Failure> = p
            .run(|| {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(Failure {
                            retryable: true,
                            after: None,
                        })
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(out.ok(), Some(3));
    }
}
