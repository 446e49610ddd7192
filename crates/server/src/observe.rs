use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use vgirpc_wire::describe::MethodType;

use crate::auth::AuthContext;
use crate::context::TransportKind;
use crate::session::SessionHost;

/// Work done serving one call, from the server's side: input was received
/// from the client, output sent to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Record batches received.
    pub input_batches: u64,
    /// Record batches sent, log batches included.
    pub output_batches: u64,
    /// Rows across the received batches.
    pub input_rows: u64,
    /// Rows across the sent batches.
    pub output_rows: u64,
    /// In-memory size of the received batches.
    pub input_bytes: u64,
    /// In-memory size of the sent batches.
    pub output_bytes: u64,
}

impl CallStats {
    /// Counts a batch received from the client.
    pub fn record_input(&mut self, batch: &RecordBatch) {
        self.input_batches += 1;
        self.input_rows += batch.num_rows() as u64;
        self.input_bytes += batch.get_array_memory_size() as u64;
    }

    /// Counts a batch sent to the client.
    pub fn record_output(&mut self, batch: &RecordBatch) {
        self.output_batches += 1;
        self.output_rows += batch.num_rows() as u64;
        self.output_bytes += batch.get_array_memory_size() as u64;
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    /// It succeeded.
    Ok,
    /// It failed (or, for streams, was cancelled by the client).
    Error {
        /// Name of the error type.
        error_type: String,
        /// The full error message.
        message: String,
    },
}

/// Everything known about one completed call (or one HTTP stream turn),
/// handed to every [`DispatchHook`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallRecord {
    /// Service (protocol) name.
    pub protocol: String,
    /// SHA-256 over the service's `__describe__` payload.
    pub protocol_hash: String,
    /// Method name.
    pub method: String,
    /// Unary or stream.
    pub method_type: MethodType,
    /// Transport the call arrived on.
    pub transport: TransportKind,
    /// Correlation id.
    pub request_id: String,
    /// Id shared by every record of one stream (32 hex characters).
    pub stream_id: Option<String>,
    /// Wall-clock time spent serving.
    pub duration: Duration,
    /// Outcome.
    pub status: CallStatus,
    /// Whether the client cancelled the stream.
    pub cancelled: bool,
    /// The request batch as a self-contained IPC stream (unary calls and
    /// stream openings only).
    pub request_data: Option<Arc<[u8]>>,
    /// The request's parameters (unary calls and stream openings), when a
    /// built-in reporter reads them.
    pub params: Option<RecordBatch>,
    /// Batch and byte counts.
    pub stats: CallStats,
    /// Caller identity.
    pub auth: Arc<AuthContext>,
    /// Peer address (`ip:port`), empty when the transport has none.
    pub remote_addr: String,
    /// HTTP status of the response, on HTTP.
    pub http_status: Option<u16>,
    /// Plaintext stream state received (HTTP continuations).
    pub request_state: Option<Vec<u8>>,
    /// Plaintext stream state handed out (HTTP).
    pub response_state: Option<Vec<u8>>,
    /// Sticky session action (`none`/`open`/`resume`/`close`), on sticky servers.
    pub session_action: Option<String>,
    /// Sticky session id (24 hex characters).
    pub session_id: Option<String>,
}

impl CallRecord {
    /// Whether the call failed.
    pub fn is_error(&self) -> bool {
        matches!(self.status, CallStatus::Error { .. })
    }
}

/// Observes every dispatched call; the access log is one implementation.
///
/// Hooks run on the serving thread after the response is written, so a slow
/// hook delays the next request on that connection but never the response.
pub trait DispatchHook: Send + Sync + 'static {
    /// Called once a call (or HTTP stream turn) has completed.
    fn on_call(&self, record: &CallRecord);

    /// Whether this hook reads [`CallRecord::request_data`], which costs
    /// serialising every request while any hook wants it. Asked once, when
    /// the hook is added.
    fn wants_request_data(&self) -> bool {
        true
    }

    /// Called when the transport refused a request before any call, for
    /// lack of acceptable credentials. Does nothing unless a hook cares.
    fn on_auth_failure(&self, _failure: &AuthFailure<'_>) {}
}

/// A request the transport's authentication refused: no call was made,
/// so no [`CallRecord`] follows.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthFailure<'a> {
    /// The service's protocol name.
    pub protocol: &'a str,
    /// Why, in the reference's terms, so that dashboards read alike
    /// across implementations: `ValueError` for credentials missing or not
    /// understood, `PermissionError` for credentials recognised and
    /// refused.
    pub error_type: &'a str,
    /// The caller's address, where the transport knows it.
    pub remote_addr: Option<&'a str>,
}

/// Records what the call did with sticky sessions; records of servers
/// without sticky sessions leave both fields out.
pub(crate) fn fill_session(record: &mut CallRecord, session: Option<&dyn SessionHost>) {
    if let Some(host) = session {
        record.session_action = Some(host.action().as_str().to_owned());
        record.session_id = host.session_id();
    }
}
