//! Framework-reserved metadata keys and the per-batch metadata map.
//!
//! Keys live in Arrow IPC *message* custom metadata (per batch), never in the
//! schema's metadata, so they can vary from batch to batch (WIRE_PROTOCOL §3).

/// Target method of a request.
pub const METHOD: &str = "vgi_rpc.method";
/// Wire protocol version of a request.
pub const REQUEST_VERSION: &str = "vgi_rpc.request_version";
/// The only wire protocol version this crate speaks.
pub const PROTOCOL_VERSION: &str = "1";
/// Per-request correlation id.
pub const REQUEST_ID: &str = "vgi_rpc.request_id";
/// Identity of the server process (12 hex characters).
pub const SERVER_ID: &str = "vgi_rpc.server_id";
/// Severity of a log or error batch.
pub const LOG_LEVEL: &str = "vgi_rpc.log_level";
/// Text of a log or error batch.
pub const LOG_MESSAGE: &str = "vgi_rpc.log_message";
/// JSON object with structured extras of a log or error batch.
pub const LOG_EXTRA: &str = "vgi_rpc.log_extra";
/// Stable machine-readable error category hoisted out of `log_extra`.
pub const ERROR_KIND: &str = "vgi_rpc.error_kind";
/// Sealed stream state for stateless HTTP exchanges (base64).
pub const STREAM_STATE: &str = "vgi_rpc.stream_state#b64";
/// Marks a client's request to cancel a running stream.
pub const CANCEL: &str = "vgi_rpc.cancel";
/// URL of an externalized batch.
pub const LOCATION: &str = "vgi_rpc.location";
/// SHA-256 of an externalized batch.
pub const LOCATION_SHA256: &str = "vgi_rpc.location.sha256";
/// Fetch duration of a resolved external batch (diagnostics).
pub const LOCATION_FETCH_MS: &str = "vgi_rpc.location.fetch_ms";
/// Original URL of a resolved external batch (diagnostics).
pub const LOCATION_SOURCE: &str = "vgi_rpc.location.source";
/// Offset of a batch inside the shared-memory segment.
pub const SHM_OFFSET: &str = "vgi_rpc.shm_offset";
/// Length of a batch inside the shared-memory segment.
pub const SHM_LENGTH: &str = "vgi_rpc.shm_length";
/// Segment a resolved shared-memory batch came from (diagnostics).
pub const SHM_SOURCE: &str = "vgi_rpc.shm_source";
/// OS name of the client's shared-memory segment.
pub const SHM_SEGMENT_NAME: &str = "vgi_rpc.shm_segment_name";
/// Total size of the client's shared-memory segment.
pub const SHM_SEGMENT_SIZE: &str = "vgi_rpc.shm_segment_size";
/// Protocol (service) name in `__describe__` responses.
pub const PROTOCOL_NAME: &str = "vgi_rpc.protocol_name";
/// Introspection format version in `__describe__` responses.
pub const DESCRIBE_VERSION: &str = "vgi_rpc.describe_version";
/// SHA-256 over the canonical `__describe__` payload.
pub const PROTOCOL_HASH: &str = "vgi_rpc.protocol_hash";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state.
pub const TRACESTATE: &str = "tracestate";

/// Custom metadata of one IPC batch: an insertion-ordered string map.
///
/// Arrow libraries disagree on whether key order is preserved, so lookups
/// never depend on order; insertion order is kept only so that what we write
/// reads naturally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, String)>,
}

impl Metadata {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, replacing an earlier value in place.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Builder-style [`Metadata::insert`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut metadata = Metadata::new();
        for (k, v) in iter {
            metadata.insert(k, v);
        }
        metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_in_place_and_keeps_order() {
        let mut md = Metadata::new().with("a", "1").with("b", "2");
        md.insert("a", "3");
        assert_eq!(md.iter().collect::<Vec<_>>(), vec![("a", "3"), ("b", "2")]);
        assert_eq!(md.remove("a").as_deref(), Some("3"));
        assert_eq!(md.get("a"), None);
        assert_eq!(md.len(), 1);
    }
}
