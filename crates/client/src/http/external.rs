//! Resolving externalized batches (WIRE_PROTOCOL §12): a zero-row pointer
//! batch names a URL holding an IPC stream with the output cycle it stands
//! for (log batches, then one data batch).

use std::time::Instant;

use sha2::{Digest, Sha256};
use vgirpc_wire::classify::{BatchKind, classify};
use vgirpc_wire::ipc::{IpcBatch, StreamReader};
use vgirpc_wire::metadata;

use super::core::HttpCore;
use crate::ClientError;
use crate::client::remote_error;
use crate::log::ServerLog;
use crate::transport::CallIo;

impl HttpCore {
    /// Fetches what `pointer` points to at `url`, delivers the log batches
    /// stored with it, and returns its data batch with the stored metadata
    /// plus where and how fast it was fetched.
    pub(super) async fn fetch_external(
        &self,
        pointer: IpcBatch,
        url: &str,
        io: &mut CallIo<'_>,
    ) -> Result<IpcBatch, ClientError> {
        let fail = |message: String| ClientError::External {
            url: url.to_owned(),
            message,
        };
        let started = Instant::now();
        // The fetcher's errors name the URL (without its query) themselves.
        let bytes = self
            .fetcher()
            .await?
            .fetch(url)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Some(expected) = pointer.metadata.get(metadata::LOCATION_SHA256) {
            let actual = hex(&Sha256::digest(&bytes));
            if actual != expected {
                return Err(fail(format!(
                    "SHA-256 checksum mismatch: expected {expected}, got {actual}"
                )));
            }
        }
        let mut reader = StreamReader::try_open(bytes.as_slice(), io.limits)
            .ok()
            .flatten()
            .ok_or_else(|| fail("the location holds no Arrow IPC stream".into()))?;
        let mut data = Vec::new();
        while let Some(batch) = reader
            .next_batch()
            .map_err(|e| fail(format!("cannot read the stored stream: {e}")))?
        {
            if batch.metadata.contains(metadata::LOCATION) {
                return Err(fail(
                    "redirect loop: the stored batch points elsewhere again".into(),
                ));
            }
            match classify(&batch.batch, &batch.metadata) {
                BatchKind::Log(record) => io.deliver(ServerLog::new(record, &batch.metadata)),
                BatchKind::Error(info) => return Err(remote_error(info, &batch.metadata)),
                _ => data.push(batch),
            }
        }
        let mut resolved = match data.len() {
            1 => data.remove(0),
            n => {
                return Err(fail(format!(
                    "expected one data batch in the stored stream, found {n}"
                )));
            }
        };
        if resolved.batch.schema_ref().fields() != pointer.batch.schema_ref().fields() {
            return Err(fail(format!(
                "schema mismatch: the pointer has {}, the stored batch {}",
                pointer.batch.schema(),
                resolved.batch.schema()
            )));
        }
        resolved
            .metadata
            .insert(metadata::LOCATION_FETCH_MS, format!("{elapsed_ms:.1}"));
        resolved.metadata.insert(metadata::LOCATION_SOURCE, url);
        Ok(resolved)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
