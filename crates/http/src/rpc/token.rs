//! Stream state between requests: sealed into a continuation token bound
//! to the caller, and opened again into a running stream.

use std::sync::Arc;

use http::StatusCode;
use vgirpc::RpcError;
use vgirpc::transport::{ActiveStream, SavedStream};
use vgirpc::wire::types::{deserialize_schema, serialize_schema};
use vgirpc_token::{TokenPayload, unix_now};

use super::{Caller, Rpc};
use crate::reply::Failure;

/// A sealed continuation token and the plaintext state inside it.
pub(super) struct Minted {
    pub(super) token: String,
    pub(super) state: Vec<u8>,
}

impl Rpc {
    /// Seals the stream's state into a continuation token.
    pub(super) fn mint(&self, stream: &ActiveStream, caller: &Caller) -> Result<Minted, RpcError> {
        let saved = stream.save()?;
        let payload = TokenPayload {
            created_at: unix_now(),
            state: saved.state,
            output_schema: serialize_schema(&saved.output_schema),
            input_schema: serialize_schema(&saved.input_schema),
            stream_id: saved.stream_id,
        };
        let token = payload.seal(&self.key, &caller.identity());
        Ok(Minted {
            token,
            state: payload.state,
        })
    }

    /// Opens a continuation token and rebuilds its stream; also returns the
    /// plaintext state, for the access record.
    pub(super) fn restore(
        &self,
        method: &str,
        token: &str,
        caller: &Caller,
    ) -> Result<(ActiveStream, Vec<u8>), Failure> {
        let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "RuntimeError", message);
        let opened = TokenPayload::open(
            token,
            &self.key,
            &caller.identity(),
            self.token_ttl_secs,
            unix_now(),
        );
        #[cfg(feature = "prometheus")]
        if let Some(metrics) = &self.metrics {
            metrics.token_opened(opened.as_ref().err());
        }
        let payload = opened.map_err(|err| {
            // The precise reason stays in the log; the client gets the
            // reference's uniform text.
            tracing::info!(%err, method, "rejected a state token");
            bad(err.client_message().to_owned())
        })?;
        let output_schema = deserialize_schema(&payload.output_schema)
            .map_err(|e| bad(format!("Failed to deserialize output schema: {e}")))?;
        let input_schema = deserialize_schema(&payload.input_schema)
            .map_err(|e| bad(format!("Failed to deserialize input schema: {e}")))?;
        let state = payload.state.clone();
        let saved = SavedStream {
            state: payload.state,
            output_schema: Arc::new(output_schema),
            input_schema: Arc::new(input_schema),
            stream_id: payload.stream_id,
        };
        let stream = self
            .server
            .resume(method, saved, caller.request_id.clone(), &caller.peer())
            .map_err(|e| bad(format!("Failed to deserialize state: {}", e.message())))?;
        Ok((stream, state))
    }
}
