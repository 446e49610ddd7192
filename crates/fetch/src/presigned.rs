//! Pre-signed URLs of the stores vgi-rpc externalizes to (S3 and GCS V4
//! signatures, Azure SAS): which they are, and when they stop working.
//! An expired URL is refused before any request, saying when it expired:
//! stores answer it with a bare 403, and emulators often not at all.

use std::time::{Duration, SystemTime};

/// Whether `url` is pre-signed for S3 or GCS, whose signatures bind the
/// method, so a `HEAD` would be refused.
pub(crate) fn is_presigned(url: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    let has = |key: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(key))
    };
    (has("X-Amz-Signature") && has("X-Amz-Credential"))
        || (has("X-Goog-Signature") && has("X-Goog-Credential"))
}

/// When a signed URL stops working: S3's SigV4 (`X-Amz-Date`, a
/// `YYYYMMDDTHHMMSSZ` time, plus `X-Amz-Expires` seconds), GCS's V4, which
/// mirrors it (`X-Goog-Date`, `X-Goog-Expires`), or an Azure SAS (`se`, a
/// `YYYY-MM-DDTHH:MM:SSZ` time); `None` for any other URL.
pub(crate) fn expiry(url: &str) -> Option<SystemTime> {
    let query = url.split_once('?')?.1;
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    for vendor in ["X-Amz", "X-Goog"] {
        if let (Some(date), Some(lifetime)) = (
            param(&format!("{vendor}-Date")),
            param(&format!("{vendor}-Expires")),
        ) {
            let signed = utc(date, [(0, 4), (4, 6), (6, 8), (9, 11), (11, 13), (13, 15)])?;
            return signed.checked_add(Duration::from_secs(lifetime.parse().ok()?));
        }
    }
    // `:` is percent-encoded in a SAS query.
    let end = param("se")?.replace("%3A", ":").replace("%3a", ":");
    utc(
        &end,
        [(0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19)],
    )
}

/// A UTC time of `text`, read from the year, month, day, hour, minute and
/// second at `fields`, with a `T` before the hour and a final `Z`.
fn utc(text: &str, fields: [(usize, usize); 6]) -> Option<SystemTime> {
    let [year, month, day, hour, minute, second] =
        fields.map(|(from, to)| text.get(from..to).and_then(|d| d.parse::<i64>().ok()));
    let time_at = fields[3].0.checked_sub(1)?;
    if text.len() != fields[5].1 + 1
        || !text.ends_with('Z')
        || text.as_bytes().get(time_at) != Some(&b'T')
    {
        return None;
    }
    let days = days_from_civil(year?, month?, day?);
    let seconds = days * 86_400 + hour? * 3600 + minute? * 60 + second?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm), so expiry needs no calendar crate.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_expiry_reads_s3_gcs_and_azure_parameters() {
        let url = "http://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240229T235959Z&X-Amz-Expires=2";
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_199 + 2);
        assert_eq!(expiry(url), Some(expected));
        let gcs = "http://h/b/k?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20240229T235959Z&X-Goog-Expires=2&X-Goog-Signature=ab";
        assert_eq!(expiry(gcs), Some(expected));
        let azure = "http://h/acct/c/k?sv=2021-08-06&se=2024-03-01T00%3A00%3A01Z&sr=b&sp=r&sig=x";
        assert_eq!(expiry(azure), Some(expected));
        assert_eq!(expiry("http://h/b/k?X-Amz-Expires=2"), None);
        assert_eq!(expiry("http://h/b/k?se=2024-03-01"), None);
        assert_eq!(
            expiry("http://h/b/k?X-Goog-Date=2024&X-Goog-Expires=2"),
            None
        );
        assert_eq!(expiry("http://h/b/k"), None);
    }
}
