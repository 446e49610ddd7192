//! Retrying transient HTTP failures with exponential backoff.
//!
//! Which requests may be repeated follows the reference client: a failure
//! to connect is always retried (nothing reached the server), while
//! gateway errors (502, 503, 504) and connections lost mid-request are
//! retried only for requests the reference treats as safe to repeat —
//! unary calls, `__describe__`, stream starts and producer continuations,
//! whose continuation token makes the repeat ask for the very same
//! batches. An exchange turn is never repeated: the server may have
//! processed the input before the gateway gave up, and processing it twice
//! would run the method's side effects twice.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use http::StatusCode;

/// When and how often failed requests are repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl Default for RetryPolicy {
    /// Three retries, backing off from 250 ms up to 10 s.
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// At most `retries` repeats of a request (so `retries + 1` attempts).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The backoff before retry `n` (counting from 0) is a random share of
    /// `base * 2^n` ("full jitter", so clients that failed together do not
    /// return together), at most `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// How many retries are allowed.
    pub(crate) fn retries(&self) -> u32 {
        self.max_retries
    }

    /// The pause before retry `attempt` (0 for the first); a server's
    /// `Retry-After` raises it, within the same maximum.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.backoff_max);
        let share = RandomState::new().hash_one(attempt) as f64 / u64::MAX as f64;
        let jittered = ceiling.mul_f64(share);
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.backoff_max)),
            None => jittered,
        }
    }
}

/// Statuses a gateway sends when the server behind it is briefly
/// unavailable.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// A `Retry-After` header in delta-seconds (the HTTP-date form is not
/// worth a date parser here; it is read as absent).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_stays_under_the_cap_and_honours_retry_after() {
        let policy = RetryPolicy::default().backoff(Duration::from_secs(1), Duration::from_secs(5));
        for attempt in 0..10 {
            let ceiling = Duration::from_secs(1 << attempt.min(3)).min(Duration::from_secs(5));
            let delay = policy.delay(attempt, None);
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
        }
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(5),
            "Retry-After is capped too"
        );
    }

    #[test]
    fn only_gateway_statuses_are_transient() {
        for code in [502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(code).unwrap()));
        }
        for code in [200, 400, 401, 404, 413, 429, 500] {
            assert!(!is_transient(StatusCode::from_u16(code).unwrap()));
        }
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
