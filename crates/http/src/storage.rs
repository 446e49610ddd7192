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
/// A signed URL whose expiry has passed is refused before any request
/// ([`FetchError::Expired`](vgirpc_fetch::FetchError::Expired)). A refusal
/// names the store's error code and message when the body carries them,
/// as S3-style XML does.
pub fn fetch_url(url: &str) -> Result<Vec<u8>, HttpError> {
    Ok(FetchConfig::default().fetch_blocking(url)?)
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
