//! Object storage for externalized batches (WIRE_PROTOCOL §12) and for
//! client uploads through vended URLs.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Method;
use vgirpc_fetch::FetchConfig;

use crate::error::HttpError;
use crate::outgoing;

/// Where externalized batches are stored, and how pointers are read back.
///
/// Calls block (they run on the threads executing requests) and may run
/// concurrently. vgi-rpc never deletes what it uploads: give the bucket a
/// lifecycle rule.
pub trait ExternalStorage: Send + Sync + 'static {
    /// Stores `data`, a complete Arrow IPC stream (compressed when
    /// `content_encoding` names a codec), and returns the URL clients fetch
    /// it from, typically pre-signed.
    fn upload(&self, data: Vec<u8>, content_encoding: Option<&str>) -> Result<String, HttpError>;

    /// Fetches the object at `url`, decoded per its `Content-Encoding`.
    ///
    /// The default fetches `http://` and `https://` URLs with
    /// [`fetch_url`]; override it for signed requests.
    fn fetch(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        fetch_url(url)
    }
}

/// A pre-signed pair of URLs for one object a client uploads itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadUrl {
    /// Where the client `PUT`s the bytes.
    pub upload_url: String,
    /// Where the server will `GET` them.
    pub download_url: String,
    /// When both URLs stop working.
    pub expires_at: SystemTime,
}

/// Vends upload URLs (`POST {prefix}/__upload_url__/init`), so clients can
/// send requests larger than `max_request_bytes` as pointer batches.
pub trait UploadUrlProvider: Send + Sync + 'static {
    /// One fresh URL pair.
    fn upload_url(&self) -> Result<UploadUrl, HttpError>;
}

/// Fetches `url`, `http://` or `https://` (trusting the system's roots,
/// which honor `SSL_CERT_FILE`), as [`FetchConfig::default`] does: ranges
/// in parallel above 64 MiB, at most 256 MiB, a zstd `Content-Encoding`
/// decoded.
///
/// A signed URL (S3 or GCS V4, Azure SAS) whose expiry has passed is
/// refused before any request, saying when it expired: stores answer it
/// with a bare 403, and emulators often not at all. A refusal names the store's error code and
/// message when the body carries them, as S3-style XML does.
pub fn fetch_url(url: &str) -> Result<Vec<u8>, HttpError> {
    if let Some(expired) = presigned_expiry(url).filter(|at| *at <= SystemTime::now()) {
        let ago = SystemTime::now()
            .duration_since(expired)
            .unwrap_or_default()
            .as_secs();
        return Err(HttpError::outgoing(
            url,
            format!("the pre-signed URL expired {ago} s ago"),
        ));
    }
    Ok(FetchConfig::default().fetch_blocking(url)?)
}

/// When a signed URL stops working: S3's SigV4 (`X-Amz-Date`, a
/// `YYYYMMDDTHHMMSSZ` time, plus `X-Amz-Expires` seconds), GCS's V4, which
/// mirrors it (`X-Goog-Date`, `X-Goog-Expires`), or an Azure SAS (`se`, a
/// `YYYY-MM-DDTHH:MM:SSZ` time); `None` for any other URL.
fn presigned_expiry(url: &str) -> Option<SystemTime> {
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

/// A client for the object service the reference conformance suite runs
/// (`vgi_rpc.conformance.fake_storage`): `POST /alloc` returns an object URL,
/// which takes a `PUT` of the bytes and then serves them on `GET`.
#[derive(Debug, Clone)]
pub struct FakeStorageClient {
    base_url: String,
}

impl FakeStorageClient {
    /// A client for the service at `base_url` (e.g. `http://127.0.0.1:8123`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    fn allocate(&self, content_encoding: Option<&str>) -> Result<String, HttpError> {
        let url = format!("{}/alloc", self.base_url);
        let request = match content_encoding {
            Some(encoding) => serde_json::json!({ "content_encoding": encoding }),
            None => serde_json::json!({}),
        };
        let reply = outgoing::send(
            Method::POST,
            &url,
            &[("content-type", "application/json")],
            Bytes::from(request.to_string()),
            1 << 20,
        )?;
        if !reply.status.is_success() {
            return Err(HttpError::outgoing(
                &url,
                format!("server answered {}", reply.status),
            ));
        }
        let body: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| HttpError::outgoing(&url, format!("invalid JSON: {e}")))?;
        body["object_url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| HttpError::outgoing(&url, "the answer has no object_url"))
    }
}

impl ExternalStorage for FakeStorageClient {
    fn upload(&self, data: Vec<u8>, content_encoding: Option<&str>) -> Result<String, HttpError> {
        let url = self.allocate(content_encoding)?;
        let mut headers = vec![("content-type", "application/octet-stream")];
        if let Some(encoding) = content_encoding {
            headers.push(("content-encoding", encoding));
        }
        let reply = outgoing::send(Method::PUT, &url, &headers, Bytes::from(data), 1 << 20)?;
        if !reply.status.is_success() {
            return Err(HttpError::outgoing(
                &url,
                format!("upload answered {}", reply.status),
            ));
        }
        Ok(url)
    }
}

impl UploadUrlProvider for FakeStorageClient {
    fn upload_url(&self) -> Result<UploadUrl, HttpError> {
        // The service uses one URL for both directions; a real object store
        // signs each method separately.
        let url = self.allocate(None)?;
        Ok(UploadUrl {
            upload_url: url.clone(),
            download_url: url,
            expires_at: SystemTime::now() + Duration::from_secs(3600),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_expiry_reads_s3_gcs_and_azure_parameters() {
        let url = "http://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240229T235959Z&X-Amz-Expires=2";
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_199 + 2);
        assert_eq!(presigned_expiry(url), Some(expected));
        let gcs = "http://h/b/k?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20240229T235959Z&X-Goog-Expires=2&X-Goog-Signature=ab";
        assert_eq!(presigned_expiry(gcs), Some(expected));
        let azure = "http://h/acct/c/k?sv=2021-08-06&se=2024-03-01T00%3A00%3A01Z&sr=b&sp=r&sig=x";
        assert_eq!(presigned_expiry(azure), Some(expected));
        assert_eq!(presigned_expiry("http://h/b/k?X-Amz-Expires=2"), None);
        assert_eq!(presigned_expiry("http://h/b/k?se=2024-03-01"), None);
        assert_eq!(
            presigned_expiry("http://h/b/k?X-Goog-Date=2024&X-Goog-Expires=2"),
            None
        );
        assert_eq!(presigned_expiry("http://h/b/k"), None);
    }
}
