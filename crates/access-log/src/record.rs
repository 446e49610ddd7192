//! Rendering a [`CallRecord`] as one access-log JSON object.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use vgirpc::{CallRecord, CallStatus};

use crate::AccessLogConfig;

fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The record as a JSON line (without the newline), at most
/// `max_record_bytes` long where the spec's shedding rules allow it.
pub(crate) fn render(record: &CallRecord, config: &AccessLogConfig) -> String {
    let mut fields = full(record, config);
    let fits = |fields: &Map<String, Value>| {
        let text = Value::Object(fields.clone()).to_string();
        (text.len() <= config.max_record_bytes).then_some(text)
    };
    if let Some(text) = fits(&fields) {
        return text;
    }
    // Shed in the order the spec lays down: the payload, then the claims,
    // then everything optional.
    if let Some(Value::String(data)) = fields.remove("request_data") {
        fields.insert("original_request_bytes".into(), data.len().into());
        fields.insert("truncated".into(), true.into());
    }
    fields.remove("request_state");
    fields.remove("response_state");
    if let Some(text) = fits(&fields) {
        return text;
    }
    if fields.contains_key("claims") {
        fields.insert("claims".into(), json!({}));
        fields.insert("truncated".into(), true.into());
        if let Some(text) = fits(&fields) {
            return text;
        }
    }
    let mut sentinel = envelope(record);
    if let CallStatus::Error { message, .. } = &record.status {
        sentinel.insert("error_message".into(), message.clone().into());
    }
    sentinel.insert("truncated".into(), "record_too_large".into());
    Value::Object(sentinel).to_string()
}

/// The always-required fields.
fn envelope(record: &CallRecord) -> Map<String, Value> {
    let (status, error_type) = match &record.status {
        CallStatus::Ok => ("ok", ""),
        CallStatus::Error { error_type, .. } => ("error", error_type.as_str()),
    };
    let duration_ms = (record.duration.as_secs_f64() * 100_000.0).round() / 100.0;
    let mut fields = Map::new();
    fields.insert("timestamp".into(), timestamp().into());
    fields.insert("level".into(), "INFO".into());
    fields.insert("logger".into(), "vgi_rpc.access".into());
    fields.insert(
        "message".into(),
        format!("{}.{} {status}", record.protocol, record.method).into(),
    );
    fields.insert("server_id".into(), vgirpc::server_id().into());
    fields.insert("protocol".into(), record.protocol.clone().into());
    fields.insert("protocol_hash".into(), record.protocol_hash.clone().into());
    fields.insert("method".into(), record.method.clone().into());
    fields.insert("method_type".into(), record.method_type.as_str().into());
    fields.insert("principal".into(), record.auth.principal_or_empty().into());
    fields.insert("auth_domain".into(), record.auth.domain_or_empty().into());
    fields.insert("authenticated".into(), record.auth.authenticated.into());
    fields.insert("remote_addr".into(), record.remote_addr.clone().into());
    fields.insert("duration_ms".into(), duration_ms.into());
    fields.insert("status".into(), status.into());
    fields.insert("error_type".into(), error_type.into());
    fields
}

fn full(record: &CallRecord, config: &AccessLogConfig) -> Map<String, Value> {
    let mut fields = envelope(record);
    if let CallStatus::Error {
        message,
        error_type,
    } = &record.status
    {
        // The schema demands a non-empty message on errors.
        let message = if message.is_empty() {
            error_type
        } else {
            message
        };
        fields.insert("error_message".into(), message.clone().into());
    }
    if record.cancelled {
        fields.insert("cancelled".into(), true.into());
    }
    if !record.request_id.is_empty() {
        fields.insert("request_id".into(), record.request_id.clone().into());
    }
    if let Some(status) = record.http_status {
        fields.insert("http_status".into(), status.into());
    }
    if let Some(stream_id) = &record.stream_id {
        fields.insert("stream_id".into(), stream_id.clone().into());
    }
    if let Some(data) = &record.request_data {
        let encoded = STANDARD.encode(data);
        if config.include_payloads {
            fields.insert("request_data".into(), encoded.into());
        } else {
            // The payload dominates line size; by default only its size is
            // kept, marked the way the schema allows a unary record to lack it.
            fields.insert("original_request_bytes".into(), encoded.len().into());
            fields.insert("truncated".into(), true.into());
        }
    }
    if config.include_payloads {
        if let Some(state) = &record.request_state {
            fields.insert("request_state".into(), STANDARD.encode(state).into());
        }
        if let Some(state) = &record.response_state {
            fields.insert("response_state".into(), STANDARD.encode(state).into());
        }
    }
    if let Some(action) = &record.session_action {
        fields.insert("session_action".into(), action.clone().into());
    }
    if let Some(id) = &record.session_id {
        fields.insert("session_id".into(), id.clone().into());
    }
    if !record.auth.claims.is_empty() {
        fields.insert("claims".into(), Value::Object(record.auth.claims.clone()));
    }
    let stats = &record.stats;
    fields.insert("input_batches".into(), stats.input_batches.into());
    fields.insert("output_batches".into(), stats.output_batches.into());
    fields.insert("input_rows".into(), stats.input_rows.into());
    fields.insert("output_rows".into(), stats.output_rows.into());
    fields.insert("input_bytes".into(), stats.input_bytes.into());
    fields.insert("output_bytes".into(), stats.output_bytes.into());
    fields
}
