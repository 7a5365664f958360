//! When to try a failed delivery again, and when to stop trying.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Retry policy of the delivery engine.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// The cap of the first retry's delay; it doubles with each attempt.
    pub base: Duration,
    /// The largest delay backoff picks by itself (DingTalk's `retry_after` may ask for more).
    pub max: Duration,
    /// Attempts in total, including the first; the delivery fails with its last error after.
    pub max_attempts: u32,
    /// A delivery older than this (since it was accepted) fails instead of being retried.
    pub max_age: Duration,
    /// How many times a token still rejected after the client's own refresh is retried.
    pub token_retries: u32,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            token_retries: 3,
        }
    }
}

/// Capped exponential backoff with full jitter: the delay before attempt `n + 1` is uniform in
/// `[0, min(max, base · 2^(n-1)))`, so retries of many deliveries that failed together spread
/// out instead of arriving together; never shorter than DingTalk's `retry_after`.
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
        let exp = self
            .config
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(30));
        let cap = exp.min(self.config.max);
        // A panic while holding the lock cannot leave the generator unusable.
        let unit: f64 = self.rng.lock().unwrap_or_else(|p| p.into_inner()).random();
        let jittered = cap.mul_f64(unit);
        match retry_after {
            Some(hint) => jittered.max(hint),
            None => jittered,
        }
    }

    /// Whether a delivery that has made `attempts` attempts and was accepted `age` ago is out of
    /// retries.
    pub fn exhausted(&self, attempts: u32, age: Duration) -> bool {
        attempts >= self.config.max_attempts || age >= self.config.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(seed: u64) -> Backoff {
        Backoff::new(
            BackoffConfig {
                base: Duration::from_secs(1),
                max: Duration::from_secs(60),
                ..BackoffConfig::default()
            },
            Some(seed),
        )
    }

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_with_full_jitter() {
        let b = backoff(7);
        for attempt in 1..=20u32 {
            let cap = Duration::from_secs(1 << (attempt - 1).min(6)).min(Duration::from_secs(60));
            let mut seen_low = false;
            let mut seen_high = false;
            for _ in 0..200 {
                let d = b.delay(attempt, None);
                assert!(d < cap, "attempt {attempt}: {d:?} >= {cap:?}");
                seen_low |= d < cap / 4;
                seen_high |= d > cap * 3 / 4;
            }
            assert!(
                seen_low && seen_high,
                "attempt {attempt}: jitter spans the range"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let (a, b) = (backoff(42), backoff(42));
        let da: Vec<_> = (1..10).map(|n| a.delay(n, None)).collect();
        let db: Vec<_> = (1..10).map(|n| b.delay(n, None)).collect();
        assert_eq!(da, db);
    }

    #[test]
    fn dingtalks_retry_after_is_a_floor_even_beyond_the_cap() {
        let b = backoff(1);
        for _ in 0..100 {
            assert!(b.delay(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        }
        // The webhook lock-out lasts 10 minutes: retrying sooner only extends it.
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
