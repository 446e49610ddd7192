//! Flag values: whole numbers, seconds, and timeouts that may be `none`.

use std::time::Duration;

pub(super) fn number<T: std::str::FromStr>(flag: &str, raw: &str) -> Result<T, String> {
    raw.parse()
        .map_err(|_| format!("{flag} takes a whole number, got {raw:?}"))
}

pub(super) fn seconds(flag: &str, raw: &str) -> Result<Duration, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag} takes a non-negative number of seconds, got {raw:?}"))
}

/// Seconds, or `none` for no timeout.
pub(super) fn timeout(flag: &str, raw: &str) -> Result<Option<Duration>, String> {
    if raw == "none" {
        return Ok(None);
    }
    seconds(flag, raw).map(Some)
}
