//! chrono types, at the microsecond precision of Python's `datetime`.

use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};

use super::ArrowValue;
use crate::value::Value;
use crate::{Result, WireError};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

impl ArrowValue for NaiveDate {
    fn arrow_type() -> DataType {
        DataType::Date32
    }
    fn to_value(&self) -> Value {
        Value::Date32(self.num_days_from_ce() - UNIX_EPOCH_FROM_CE)
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Date32(days) => days
                .checked_add(UNIX_EPOCH_FROM_CE)
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .ok_or_else(|| WireError::OutOfRange(format!("date32 {days} is not a valid date"))),
            other => Err(other.mismatch("date32")),
        }
    }
}

fn micros_to_datetime(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| WireError::OutOfRange(format!("timestamp {micros}us is out of range")))
}

impl ArrowValue for NaiveDateTime {
    fn arrow_type() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    }
    fn to_value(&self) -> Value {
        Value::Timestamp(self.and_utc().timestamp_micros())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Timestamp(micros) => Ok(micros_to_datetime(micros)?.naive_utc()),
            other => Err(other.mismatch("timestamp[us]")),
        }
    }
}

impl ArrowValue for DateTime<Utc> {
    fn arrow_type() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }
    fn to_value(&self) -> Value {
        Value::Timestamp(self.timestamp_micros())
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Timestamp(micros) => micros_to_datetime(micros),
            other => Err(other.mismatch("timestamp[us, tz=UTC]")),
        }
    }
}

impl ArrowValue for NaiveTime {
    fn arrow_type() -> DataType {
        DataType::Time64(TimeUnit::Microsecond)
    }
    fn to_value(&self) -> Value {
        // chrono marks a leap second with nanoseconds past 1e9; Arrow has no
        // leap seconds, so it folds into the last microsecond of its second.
        let micros = i64::from(self.nanosecond().min(999_999_999) / 1_000);
        Value::Time64(i64::from(self.num_seconds_from_midnight()) * 1_000_000 + micros)
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Time64(micros) if (0..MICROS_PER_DAY).contains(&micros) => {
                let secs = u32::try_from(micros / 1_000_000).ok();
                let nanos = u32::try_from(micros % 1_000_000 * 1_000).ok();
                secs.zip(nanos)
                    .and_then(|(s, n)| NaiveTime::from_num_seconds_from_midnight_opt(s, n))
                    .ok_or_else(|| WireError::OutOfRange(format!("time64 {micros}us")))
            }
            Value::Time64(micros) => Err(WireError::OutOfRange(format!(
                "time64 {micros}us is not within a day"
            ))),
            other => Err(other.mismatch("time64[us]")),
        }
    }
}

impl ArrowValue for TimeDelta {
    fn arrow_type() -> DataType {
        DataType::Duration(TimeUnit::Microsecond)
    }
    fn to_value(&self) -> Value {
        // Sub-microsecond precision is dropped, as in Python's `timedelta`;
        // the few deltas too large for i64 microseconds saturate.
        let micros = self
            .num_microseconds()
            .unwrap_or(if *self < TimeDelta::zero() {
                i64::MIN
            } else {
                i64::MAX
            });
        Value::Duration(micros)
    }
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Duration(micros) => Ok(TimeDelta::microseconds(micros)),
            other => Err(other.mismatch("duration[us]")),
        }
    }
}
