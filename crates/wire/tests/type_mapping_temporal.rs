//! Dates, times, timestamps and durations against the columns pyarrow
//! wrote, and the values out of their range.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod columns;
    pub(crate) mod dates;
    pub(crate) mod fixtures;
}

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use common::columns::check_column;
use common::dates::{date, when};
use vgirpc_wire::WireError;
use vgirpc_wire::types::ArrowValue;
use vgirpc_wire::value::Value;

#[test]
fn temporal_columns() {
    check_column("date32", date(2026, 4, 25));
    check_column("date32_before_epoch", date(1900, 1, 1));
    check_column("timestamp_us", when());
    check_column("timestamp_us_utc", when().and_utc());
    check_column(
        "time64_us",
        NaiveTime::from_hms_micro_opt(12, 30, 45, 123_456).unwrap(),
    );
    check_column("duration_us", TimeDelta::microseconds(10_000_500));
    check_column(
        "duration_us_negative",
        TimeDelta::microseconds(-86_400_000_000 + 1),
    );
}

#[test]
fn temporal_ranges_are_checked() {
    assert!(matches!(
        NaiveTime::from_value(Value::Time64(86_400_000_000)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        NaiveTime::from_value(Value::Time64(-1)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        NaiveDate::from_value(Value::Date32(i32::MAX)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        NaiveDateTime::from_value(Value::Timestamp(i64::MAX)),
        Err(WireError::OutOfRange(_))
    ));
}
