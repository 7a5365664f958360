//! When the engine tries a failed delivery again, and when it stops: DingTalk's one retry story
//! ([`dingtalk::RetryPolicy`]: which errors, how long to wait) with a queue's patience — more
//! attempts, longer waits, an age limit — and reproducible jitter for tests.

use std::sync::Mutex;
use std::time::Duration;

use dingtalk::RetryPolicy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Retry policy of the delivery engine.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Attempts and delays; DingTalk's `retry_after` may ask for more than `max_delay`.
    pub policy: RetryPolicy,
    /// A delivery older than this (since it was accepted) fails instead of being retried.
    pub max_age: Duration,
    /// How many times a token still rejected after the client's own refresh is retried.
    pub token_retries: u32,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            policy: RetryPolicy {
                max_attempts: 12,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(300),
            },
            max_age: Duration::from_secs(24 * 3600),
            token_retries: 3,
        }
    }
}

/// [`BackoffConfig`] with its source of jitter.
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    rng: Mutex<StdRng>,
}

impl Backoff {
    /// `seed` makes the jitter reproducible (tests); `None` seeds from the OS.
    pub fn new(config: BackoffConfig, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Backoff {
            config,
            rng: Mutex::new(rng),
        }
    }

    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// The delay after failed attempt number `attempt` (counting from 1).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        // A panic while holding the lock cannot leave the generator unusable.
        let unit: f64 = self.rng.lock().unwrap_or_else(|p| p.into_inner()).random();
        self.config.policy.delay_with(attempt, retry_after, unit)
    }

    /// Whether a delivery that has made `attempts` attempts and was accepted `age` ago is out of
    /// retries.
    pub fn exhausted(&self, attempts: u32, age: Duration) -> bool {
        !self.config.policy.allows_another(attempts) || age >= self.config.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let (a, b) = (
            Backoff::new(BackoffConfig::default(), Some(42)),
            Backoff::new(BackoffConfig::default(), Some(42)),
        );
        let da: Vec<_> = (1..10).map(|n| a.delay(n, None)).collect();
        let db: Vec<_> = (1..10).map(|n| b.delay(n, None)).collect();
        assert_eq!(da, db);
    }

    #[test]
    fn a_queue_waits_as_long_as_dingtalk_asks() {
        let b = Backoff::new(BackoffConfig::default(), Some(1));
        // The webhook lock-out lasts 10 minutes, beyond the 5-minute cap.
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn retries_stop_after_max_attempts_or_max_age() {
        let b = Backoff::new(BackoffConfig::default(), Some(0));
        assert!(!b.exhausted(11, Duration::from_secs(3600)));
        assert!(b.exhausted(12, Duration::ZERO));
        assert!(b.exhausted(1, Duration::from_secs(24 * 3600)));
    }
}
