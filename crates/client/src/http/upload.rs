//! Requests larger than the server takes inline (WIRE_PROTOCOL §12, as
//! the reference client does it): a server that answers `413` and says
//! `VGI-Upload-URL-Support: true` vends an upload URL
//! (`POST {prefix}/__upload_url__/init`); the request batch's IPC stream
//! is `PUT` there, and the request goes again as a zero-row pointer batch
//! naming the download URL, with the original batch's metadata.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use http::StatusCode;
use vgirpc_wire::classify::{BatchKind, classify};
use vgirpc_wire::ipc::{ReadLimits, StreamReader};
use vgirpc_wire::metadata;

use super::ARROW_STREAM;
use super::core::{HttpCore, Repeat, Reply};
use super::payload::Payload;
use super::reply::{body_of, open_reply};
use super::sticky::SessionState;
use crate::ClientError;
use crate::client::remote_error;

/// The capability header of servers that vend upload URLs.
const UPLOAD_URL_SUPPORT: &str = "vgi-upload-url-support";
/// The capability header naming the largest request taken inline.
const MAX_REQUEST_BYTES: &str = "vgi-max-request-bytes";
/// The method name the upload-URL request carries.
const UPLOAD_URL_METHOD: &str = "__upload_url__";

/// Where one upload goes, and where the server will read it.
struct UploadUrl {
    upload: String,
    download: String,
}

fn upload_error(url: &str, message: impl Into<String>) -> ClientError {
    ClientError::Upload {
        url: url.split(['?', '#']).next().unwrap_or(url).to_owned(),
        message: message.into(),
    }
}

impl HttpCore {
    /// Whether `reply` refuses a request as too large from a server that
    /// takes it by an upload URL instead, and the options allow that; if
    /// so, the cap it names is remembered, as the reference client does.
    pub(super) fn takes_upload(&self, reply: &Reply) -> bool {
        let takes = self.options.upload_large_requests
            && reply.status == StatusCode::PAYLOAD_TOO_LARGE
            && reply
                .headers
                .get(UPLOAD_URL_SUPPORT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let cap = reply
            .headers
            .get(MAX_REQUEST_BYTES)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        if let Some(cap) = cap.filter(|_| takes) {
            self.request_cap.store(cap, Ordering::Relaxed);
        }
        takes
    }

    /// Whether `body` is known to be above the server's cap, so it would
    /// only be refused inline. The cap is compared with the body before
    /// compression, as the reference client does.
    pub(super) fn above_known_cap(&self, body: &Payload) -> bool {
        let cap = self.request_cap.load(Ordering::Relaxed);
        self.options.upload_large_requests && cap > 0 && body.len() as u64 > cap
    }

    /// Uploads `body`, one request IPC stream, to a URL the server vends
    /// and returns the pointer request that replaces it.
    pub(super) async fn upload_request(
        &self,
        body: &Payload,
        session: &mut Option<SessionState>,
    ) -> Result<Payload, ClientError> {
        let body = body.contiguous();
        let url = self.upload_url(session).await?;
        let fetcher = self.fetcher().await?;
        let timeout = fetcher.config().timeout;
        fetcher
            .outgoing()
            .put(&url.upload, body.clone(), ARROW_STREAM, timeout)
            .await
            .map_err(|e| upload_error(&url.upload, e.to_string()))?;
        pointer_request(&body, &url.download)
    }

    /// One URL pair from `POST {prefix}/__upload_url__/init`.
    async fn upload_url(
        &self,
        session: &mut Option<SessionState>,
    ) -> Result<UploadUrl, ClientError> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::Int64,
            false,
        )]));
        let params = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))])
            .expect("one Int64 column fits its schema");
        let body = Payload::of_batch(&params, &crate::trace::request_metadata(UPLOAD_URL_METHOD))?;
        let path = format!("/{UPLOAD_URL_METHOD}/init");
        let reply = self.post_inline(&path, body, Repeat::Safe, session).await?;
        let endpoint = format!("{}{path}", self.endpoint());
        if reply.status == StatusCode::NOT_FOUND {
            return Err(upload_error(&endpoint, "the server vends no upload URLs"));
        }
        let mut rest = body_of(&reply);
        let mut reader = open_reply(&reply, &mut rest, ReadLimits::default())?;
        while let Some(batch) = reader.next_batch().map_err(ClientError::from_wire)? {
            match classify(&batch.batch, &batch.metadata) {
                BatchKind::Error(info) => return Err(remote_error(info, &batch.metadata)),
                BatchKind::Data if batch.batch.num_rows() > 0 => {
                    let column = |name: &str| {
                        batch
                            .batch
                            .column_by_name(name)
                            .and_then(|c| c.as_string_opt::<i32>())
                            .filter(|c| c.is_valid(0))
                            .map(|c| c.value(0).to_owned())
                    };
                    if let (Some(upload), Some(download)) =
                        (column("upload_url"), column("download_url"))
                    {
                        return Ok(UploadUrl { upload, download });
                    }
                }
                _ => {}
            }
        }
        Err(upload_error(
            &endpoint,
            "the answer holds no upload_url and download_url",
        ))
    }
}

/// The request of `body` as a zero-row pointer batch to `location`: the
/// same schema and metadata (method, version, stream state), plus
/// `vgi_rpc.location`, so the server routes it before it fetches.
fn pointer_request(body: &[u8], location: &str) -> Result<Payload, ClientError> {
    let mut rest = body;
    let request = StreamReader::try_open(&mut rest, ReadLimits::default())
        .map_err(ClientError::from_wire)?
        .and_then(|mut reader| reader.next_batch().transpose())
        .transpose()
        .map_err(ClientError::from_wire)?
        .ok_or_else(|| ClientError::Protocol("a request body without a batch".into()))?;
    let pointer = RecordBatch::new_empty(request.batch.schema());
    let md = request.metadata.with(metadata::LOCATION, location);
    Payload::of_batch(&pointer, &md)
}
