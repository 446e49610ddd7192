//! What a response may hold: results externalized to storage when large,
//! and the two caps (`max_response_bytes` on the wire,
//! `max_externalized_response_bytes` in storage).

use arrow_schema::SchemaRef;
use http::StatusCode;
use vgirpc::transport::Answer;
use vgirpc::wire::WireError;
use vgirpc::wire::ipc::{Chunks, StreamWriter};
use vgirpc::wire::log::ErrorInfo;
use vgirpc::{ResponseBudget, RpcError};

use super::Rpc;
use crate::external::{Entry, data_entry};
use crate::reply::{Failure, Reply, encode_answer};

impl Rpc {
    /// A unary answer, with its result externalized and both caps enforced.
    pub(super) fn unary_reply(
        &self,
        method: &str,
        mut answer: Answer,
        request_id: &str,
    ) -> (Reply, Option<ErrorInfo>) {
        if answer.failure.is_some() {
            return (Reply::of_answer(&answer), None);
        }
        let schema = answer.schema.clone();
        let fail = |info: ErrorInfo| {
            let reply = Failure::internal(info.clone(), schema.clone()).reply(request_id);
            (reply, Some(info))
        };
        let mut uploaded = 0;
        if let (Some(external), Some(index)) = (&self.external, data_entry(&answer.batches)) {
            let result = &answer.batches[index].0;
            let predicted = if result.num_rows() > 0 {
                external.predict(result)
            } else {
                0
            };
            if let Some(message) = self.external_overshoot(method, predicted) {
                return fail(ErrorInfo::new("RuntimeError", message));
            }
            let entry = answer.batches.remove(index);
            match external.externalize_batch(&schema, entry) {
                Ok((entry, bytes)) => {
                    answer.batches.insert(index, entry);
                    uploaded = bytes;
                }
                Err(err) => return fail(err.info().clone()),
            }
        }
        let body = encode_answer(&answer);
        match self.overshoot(method, body.len(), uploaded) {
            Some(message) => fail(ErrorInfo::new("RuntimeError", message)),
            None => {
                let reply = Reply {
                    status: StatusCode::OK,
                    body,
                };
                (reply, None)
            }
        }
    }

    /// Writes one output cycle, externalized when its data batch is large.
    /// Returns the bytes uploaded.
    pub(super) fn write_cycle(
        &self,
        writer: &mut StreamWriter<&mut Chunks>,
        schema: &SchemaRef,
        entries: Vec<Entry>,
    ) -> Result<usize, RpcError> {
        let (entries, uploaded) = match &self.external {
            Some(external) => external.externalize_cycle(schema, entries)?,
            None => (entries, 0),
        };
        for (batch, md) in &entries {
            writer.write_shared(batch, md).map_err(internal)?;
        }
        Ok(uploaded)
    }

    /// The error text when a response breaks either cap.
    pub(super) fn overshoot(
        &self,
        method: &str,
        wire_bytes: usize,
        uploaded: usize,
    ) -> Option<String> {
        if let Some(cap) = self.max_response_bytes
            && wire_bytes as u64 > cap
        {
            return Some(format!(
                "HTTP body exceeds max_response_bytes ({wire_bytes} > {cap}) for method '{method}'"
            ));
        }
        self.external_overshoot(method, uploaded)
    }

    /// The error text when `uploaded` bytes would break the external cap.
    /// What a response that holds `written` body bytes and has uploaded
    /// `uploaded` bytes can still take, as a call's output collector
    /// reports it.
    pub(super) fn budget(&self, written: u64, uploaded: u64) -> ResponseBudget {
        let external = self.external.is_some();
        ResponseBudget::new(
            self.max_response_bytes
                .map(|cap| cap.saturating_sub(written)),
            self.max_externalized_response_bytes
                .filter(|_| external)
                .map(|cap| cap.saturating_sub(uploaded)),
            external,
        )
    }

    pub(super) fn external_overshoot(&self, method: &str, uploaded: usize) -> Option<String> {
        let cap = self.max_externalized_response_bytes?;
        (uploaded as u64 > cap).then(|| {
            format!(
                "Externalised payload exceeds max_externalized_response_bytes ({uploaded} > {cap}) \
                 for method '{method}'"
            )
        })
    }
}

pub(super) fn internal(err: WireError) -> RpcError {
    RpcError::runtime_error(format!("cannot encode the response: {err}"))
}
