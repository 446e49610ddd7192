//! Upload-URL vending (`POST {prefix}/__upload_url__/init`): pre-signed
//! pairs from the configured provider, for clients that upload large
//! inputs themselves.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use http::StatusCode;
use vgirpc::wire::ipc::write_stream_bytes;
use vgirpc::wire::log::ErrorInfo;
use vgirpc::wire::metadata::Metadata;

use super::{Caller, Rpc};
use crate::reply::{Failure, Reply};

/// Method name of the upload-URL endpoint's requests.
const UPLOAD_URL_METHOD: &str = "__upload_url__";
/// The most URL pairs one upload-URL request may ask for.
const MAX_UPLOAD_URLS: i64 = 100;

impl Rpc {
    /// `POST {prefix}/__upload_url__/init`: `count` (default 1, at most 100)
    /// pre-signed upload/download URL pairs.
    pub(crate) fn upload_urls(&self, body: &Bytes, caller: &Caller) -> Reply {
        let Some(provider) = &self.upload_urls else {
            return Reply::of_answer(
                &self
                    .server
                    .unknown_method(UPLOAD_URL_METHOD, &caller.request_id),
            );
        };
        let request = match self.request(UPLOAD_URL_METHOD, body, caller) {
            Ok(request) => request,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        let count = request
            .params
            .column_by_name("count")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .filter(|c| c.len() == 1 && !c.is_null(0))
            .map_or(1, |c| c.value(0))
            .clamp(1, MAX_UPLOAD_URLS);
        let schema = upload_url_schema();
        let urls = (0..count)
            .map(|_| provider.upload_url())
            .collect::<Result<Vec<_>, _>>();
        let urls = match urls {
            Ok(urls) => urls,
            Err(err) => {
                let info =
                    ErrorInfo::new("RuntimeError", format!("cannot vend upload URLs: {err}"));
                return Failure::internal(info, schema).reply(&caller.request_id);
            }
        };
        let micros = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    urls.iter().map(|u| u.upload_url.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    urls.iter().map(|u| u.download_url.as_str()),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        urls.iter().map(|u| micros(u.expires_at)),
                    )
                    .with_timezone("UTC"),
                ),
            ],
        )
        .expect("the columns match the upload-URL schema");
        Reply {
            status: StatusCode::OK,
            body: write_stream_bytes(&schema, [(&batch, &Metadata::new())])
                .expect("an upload-URL batch always encodes")
                .into(),
        }
    }
}

fn upload_url_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("upload_url", DataType::Utf8, true),
        Field::new("download_url", DataType::Utf8, true),
        Field::new(
            "expires_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}
