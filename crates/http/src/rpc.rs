//! The vgi-rpc endpoints (WIRE_PROTOCOL §10): unary calls, stream init,
//! stream turns and upload-URL vending, each from a complete request body to
//! a complete Arrow IPC response body.
//!
//! Everything here blocks (methods run, storage is called), so it runs on
//! the runtime's blocking threads, one request per thread. The files split
//! the work by job: `calls` reads requests and dispatches them, `stream`
//! drives producer and exchange turns, `output` externalizes results and
//! enforces the response caps, `token` seals and opens stream state, and
//! `upload` vends upload URLs.

mod calls;
mod output;
mod stream;
mod token;
mod upload;

use std::sync::Arc;

use vgirpc::wire::log::ErrorInfo;
use vgirpc::{Peer, Server, TransportKind};
use vgirpc_token::{Identity, TokenKey};

use crate::auth::{AuthContext, token_identity};
use crate::external::ExternalConfig;
use crate::sticky::BoundSession;
use crate::storage::UploadUrlProvider;

/// What the HTTP layers established about the request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) auth: Arc<AuthContext>,
    /// `ip:port` of the peer, empty when unknown.
    pub(crate) remote_addr: String,
    pub(crate) request_id: String,
    /// The request's sticky session host, on sticky servers.
    pub(crate) session: Option<BoundSession>,
    /// W3C `traceparent` and `tracestate` headers, for requests whose
    /// Arrow metadata carries no trace context of its own.
    pub(crate) trace_headers: Vec<(&'static str, String)>,
}

impl Caller {
    fn identity(&self) -> Identity {
        token_identity(&self.auth)
    }

    /// The caller as the server core sees it.
    fn peer(&self) -> Peer {
        Peer::anonymous(TransportKind::Http)
            .with_auth(self.auth.clone())
            .with_session(self.session.as_ref().map(|bound| bound.0.clone()))
    }
}

/// How a stream turn ended, beyond its reply: what the access record needs.
#[derive(Debug, Default)]
struct Turn {
    /// The plaintext state handed out in a new token, if one was.
    response_state: Option<Vec<u8>>,
    /// A failure the transport imposed after the method succeeded (a cap).
    failure: Option<ErrorInfo>,
}

/// The configured endpoints of one server.
pub(crate) struct Rpc {
    pub(crate) server: Server,
    pub(crate) key: TokenKey,
    pub(crate) token_ttl_secs: u64,
    pub(crate) max_response_bytes: Option<u64>,
    pub(crate) max_externalized_response_bytes: Option<u64>,
    pub(crate) external: Option<ExternalConfig>,
    pub(crate) upload_urls: Option<Arc<dyn UploadUrlProvider>>,
    /// What is counted for Prometheus, when metrics are configured.
    #[cfg(feature = "prometheus")]
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
}
