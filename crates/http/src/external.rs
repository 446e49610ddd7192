//! Externalization (WIRE_PROTOCOL §12): large response batches go to object
//! storage and travel as zero-row pointer batches carrying
//! `vgi_rpc.location`; pointer batches a client sends are fetched back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_data::ArrayData;
use arrow_schema::SchemaRef;
use sha2::{Digest, Sha256};
use vgirpc::RpcError;
use vgirpc::wire::ipc::{IpcBatch, read_stream_bytes, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::{self, Metadata};

use crate::storage::ExternalStorage;

/// A batch with the custom metadata of its IPC message.
pub(crate) type Entry = (RecordBatch, Metadata);

/// Decides which URLs in client pointer batches the server may fetch.
pub type UrlPolicy = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Attempts per pointer fetch, and the pause between them (the reference's).
const FETCH_ATTEMPTS: usize = 3;
const FETCH_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Server-side externalization settings.
#[derive(Clone)]
pub struct ExternalConfig {
    storage: Arc<dyn ExternalStorage>,
    threshold_bytes: usize,
    compression_level: Option<i32>,
    url_policy: UrlPolicy,
}

impl std::fmt::Debug for ExternalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalConfig")
            .field("threshold_bytes", &self.threshold_bytes)
            .field("compression_level", &self.compression_level)
            .finish_non_exhaustive()
    }
}

impl ExternalConfig {
    /// Externalize into `storage` batches of at least 1 MiB, uncompressed,
    /// and fetch only `https://` pointer URLs (the reference's defaults).
    pub fn new(storage: Arc<dyn ExternalStorage>) -> Self {
        Self {
            storage,
            threshold_bytes: 1 << 20,
            compression_level: None,
            url_policy: Arc::new(https_only),
        }
    }

    /// Batches whose Arrow buffers total at least `bytes` are externalized.
    pub fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold_bytes = bytes;
        self
    }

    /// Compress uploads with zstd at `level` (`Content-Encoding: zstd`).
    pub fn with_compression(mut self, level: i32) -> Self {
        self.compression_level = Some(level);
        self
    }

    /// Replaces the check applied to URLs before the server fetches them.
    pub fn with_url_policy(mut self, policy: UrlPolicy) -> Self {
        self.url_policy = policy;
        self
    }

    /// Fetch only URLs under one of `locations`, each a scheme, host, port
    /// and path prefix such as a bucket's (`S3Storage::location` gives
    /// one): a client cannot make the server request any other address,
    /// nor climb out of the prefix with `..` segments.
    pub fn with_allowed_locations<I, S>(self, locations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let locations: Vec<String> = locations.into_iter().map(Into::into).collect();
        self.with_url_policy(Arc::new(move |url: &str| {
            if locations
                .iter()
                .any(|location| vgirpc_fetch::is_under(url, location))
            {
                Ok(())
            } else {
                let shown = url.split_once('?').map_or(url, |(path, _)| path);
                Err(format!("{shown} is not in an allowed storage location"))
            }
        }))
    }

    /// Fetch any URL a client names. Only for trusted clients: otherwise the
    /// server can be made to request internal addresses.
    pub fn allow_any_url(self) -> Self {
        self.with_url_policy(Arc::new(|_: &str| Ok(())))
    }

    /// How many bytes externalizing this data batch would upload (0 when it
    /// stays inline); measured before any upload, so caps can refuse first.
    pub(crate) fn predict(&self, batch: &RecordBatch) -> usize {
        let size = buffer_size(batch);
        if size >= self.threshold_bytes && size > 0 {
            size
        } else {
            0
        }
    }

    /// [`ExternalConfig::predict`] for one output cycle (logs plus at most one
    /// data batch), which is externalized as a whole.
    pub(crate) fn predict_cycle(&self, entries: &[Entry]) -> usize {
        data_entry(entries).map_or(0, |i| self.predict(&entries[i].0))
    }

    /// Externalizes a cycle whose data batch reaches the threshold: all its
    /// batches go into one uploaded stream, replaced by one pointer batch.
    /// Returns the entries to write and the bytes uploaded.
    pub(crate) fn externalize_cycle(
        &self,
        schema: &SchemaRef,
        entries: Vec<Entry>,
    ) -> Result<(Vec<Entry>, usize), RpcError> {
        if self.predict_cycle(&entries) == 0 {
            return Ok((entries, 0));
        }
        let (pointer, uploaded) = self.upload(schema, &entries)?;
        Ok((vec![pointer], uploaded))
    }

    /// Externalizes a lone batch (a unary result, a stream header) that
    /// has rows and reaches the threshold.
    pub(crate) fn externalize_batch(
        &self,
        schema: &SchemaRef,
        entry: Entry,
    ) -> Result<(Entry, usize), RpcError> {
        if entry.0.num_rows() == 0 || self.predict(&entry.0) == 0 {
            return Ok((entry, 0));
        }
        self.upload(schema, std::slice::from_ref(&entry))
    }

    fn upload(&self, schema: &SchemaRef, entries: &[Entry]) -> Result<(Entry, usize), RpcError> {
        let stream =
            write_stream_bytes(schema, entries.iter().map(|(b, m)| (b, m))).map_err(|e| {
                RpcError::runtime_error(format!("cannot serialize a batch to upload: {e}"))
            })?;
        let raw_len = stream.len();
        let digest = hex(&Sha256::digest(&stream));
        let (payload, encoding) = match self.compression_level {
            Some(level) => {
                let compressed = zstd::bulk::compress(&stream, level).map_err(|e| {
                    RpcError::runtime_error(format!("cannot compress a batch to upload: {e}"))
                })?;
                (compressed, Some("zstd"))
            }
            None => (stream, None),
        };
        let url = self
            .storage
            .upload(payload, encoding)
            .map_err(|e| RpcError::runtime_error(format!("external storage upload failed: {e}")))?;
        tracing::debug!(
            raw_len,
            compressed = encoding.is_some(),
            "batch externalized"
        );
        let md = Metadata::new()
            .with(metadata::LOCATION, url)
            .with(metadata::LOCATION_SHA256, digest);
        Ok(((empty_batch(schema), md), raw_len))
    }

    /// Replaces a client's pointer batch with the data batch it points to;
    /// any other batch passes through. The resolved batch keeps the
    /// metadata it was stored with, plus where and how fast it was fetched.
    pub(crate) fn resolve(&self, input: IpcBatch) -> Result<IpcBatch, RpcError> {
        let Some(url) = pointer_url(&input) else {
            return Ok(input);
        };
        let url = url.to_owned();
        (self.url_policy)(&url).map_err(RpcError::value_error)?;
        let started = Instant::now();
        let bytes = self.fetch_with_retries(&url)?;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Some(expected) = input.metadata.get(metadata::LOCATION_SHA256) {
            let actual = hex(&Sha256::digest(&bytes));
            if actual != expected {
                return Err(RpcError::runtime_error(format!(
                    "SHA-256 checksum mismatch for {url}: expected {expected}, got {actual}"
                )));
            }
        }
        let (_, batches) = read_stream_bytes(&bytes).map_err(|e| {
            RpcError::runtime_error(format!(
                "ExternalLocation data from {url} is not an IPC stream: {e}"
            ))
        })?;
        let mut data = Vec::new();
        for batch in batches {
            if batch.metadata.contains(metadata::LOCATION) {
                return Err(RpcError::runtime_error(format!(
                    "Redirect loop detected: fetched batch from {url} contains vgi_rpc.location"
                )));
            }
            if !batch.metadata.contains(metadata::LOG_LEVEL) {
                data.push(batch);
            }
        }
        let mut resolved = match data.len() {
            1 => data.pop().expect("one batch"),
            0 => {
                return Err(RpcError::runtime_error(format!(
                    "No data batch found in ExternalLocation stream from {url}"
                )));
            }
            n => {
                return Err(RpcError::runtime_error(format!(
                    "Multiple data batches ({n}) found in ExternalLocation stream from {url}"
                )));
            }
        };
        if resolved.batch.schema_ref().fields() != input.batch.schema_ref().fields() {
            return Err(RpcError::value_error(format!(
                "Schema mismatch in ExternalLocation: expected {}, got {}",
                input.batch.schema(),
                resolved.batch.schema()
            )));
        }
        resolved
            .metadata
            .insert(metadata::LOCATION_FETCH_MS, format!("{elapsed_ms:.1}"));
        resolved.metadata.insert(metadata::LOCATION_SOURCE, url);
        Ok(resolved)
    }

    fn fetch_with_retries(&self, url: &str) -> Result<Vec<u8>, RpcError> {
        let mut last = None;
        for attempt in 0..FETCH_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(FETCH_RETRY_DELAY);
            }
            match self.storage.fetch(url) {
                Ok(bytes) => return Ok(bytes),
                Err(err) => {
                    tracing::warn!(%err, attempt, "fetching an external batch failed");
                    last = Some(err);
                }
            }
        }
        let reason = last.map(|e| e.to_string()).unwrap_or_default();
        Err(RpcError::runtime_error(format!(
            "Failed to resolve ExternalLocation after {FETCH_ATTEMPTS} attempts: {url} ({reason})"
        )))
    }
}

/// The URL of a pointer batch: zero rows, `vgi_rpc.location`, and no log
/// level (which would make it a log batch).
pub(crate) fn pointer_url(batch: &IpcBatch) -> Option<&str> {
    if batch.batch.num_rows() != 0 || batch.metadata.contains(metadata::LOG_LEVEL) {
        return None;
    }
    batch.metadata.get(metadata::LOCATION)
}

/// Index of the cycle's data batch: the one that is not a log or error.
pub(crate) fn data_entry(entries: &[Entry]) -> Option<usize> {
    entries
        .iter()
        .rposition(|(_, md)| !md.contains(metadata::LOG_LEVEL))
}

/// Total length of the batch's Arrow buffers, the size the reference's
/// threshold and caps are measured in.
pub(crate) fn buffer_size(batch: &RecordBatch) -> usize {
    fn data_size(data: &ArrayData) -> usize {
        data.buffers().iter().map(|b| b.len()).sum::<usize>()
            + data.nulls().map_or(0, |n| n.buffer().len())
            + data.child_data().iter().map(data_size).sum::<usize>()
    }
    batch
        .columns()
        .iter()
        .map(|column| data_size(&column.to_data()))
        .sum()
}

fn https_only(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        Ok(())
    } else {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        Err(format!(
            "URL scheme '{scheme}' not allowed (only 'https' is permitted)"
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_url_is_named_without_its_query() {
        let config = ExternalConfig::new(Arc::new(crate::testing::FakeStorageClient::new(
            "http://127.0.0.1:9",
        )))
        .with_allowed_locations(["http://127.0.0.1:9/blob/"]);
        assert!((config.url_policy)("http://127.0.0.1:9/blob/1").is_ok());
        let refused = (config.url_policy)("http://10.0.0.1/x?sig=secret").unwrap_err();
        assert_eq!(
            refused,
            "http://10.0.0.1/x is not in an allowed storage location"
        );
    }
}
