//! The dates and times the fixtures hold.

use chrono::{NaiveDate, NaiveDateTime};

pub(crate) fn when() -> NaiveDateTime {
    date(2026, 4, 25)
        .and_hms_micro_opt(12, 0, 0, 123_456)
        .unwrap()
}

pub(crate) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
