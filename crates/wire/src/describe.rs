//! The `__describe__` introspection response (describe format version 4).
//!
//! One row per method, sorted by name, with the schemas serialized the way
//! `pa.Schema.serialize()` does; the batch metadata carries the protocol name,
//! versions, server id and `protocol_hash`, a SHA-256 over the language-neutral
//! fields that lets a registry recognise the same protocol across processes.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, BooleanArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::metadata::{self, Metadata};
use crate::types::{deserialize_schema, serialize_schema};
use crate::{Result, WireError};

/// Name of the built-in introspection method.
pub const DESCRIBE_METHOD: &str = "__describe__";

/// Introspection format version produced here.
pub const DESCRIBE_VERSION: &str = "4";

/// Describe metadata key of [`MethodDescription::embedded_params`]: a JSON
/// object `{method: {parameter: base64 of the serialized schema}}`.
///
/// The schemas ride in the metadata rather than in the parameter fields so
/// that `params_schema_ipc`, and with it the protocol hash, stays the same
/// as another port's for the same service.
pub const EMBEDDED_PARAMS_KEY: &str = "vgirpc.embedded_params";

/// Whether a method answers once or streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodType {
    /// One request, one response.
    Unary,
    /// A producer or exchange stream.
    Stream,
}

impl MethodType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodType::Unary => "unary",
            MethodType::Stream => "stream",
        }
    }
}

/// The language-neutral description of one method.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodDescription {
    /// Method name.
    pub name: String,
    /// Unary or stream.
    pub method_type: MethodType,
    /// Whether a unary method returns a value.
    pub has_return: bool,
    /// Schema of the request parameters.
    pub params_schema: SchemaRef,
    /// Schema of a unary result (empty for streams and void methods).
    pub result_schema: SchemaRef,
    /// Schema of the stream header, if the method declares one.
    pub header_schema: Option<SchemaRef>,
    /// `Some(true)` for exchange streams, `Some(false)` for producers, `None`
    /// when unknown until the method runs (and always for unary methods).
    pub is_exchange: Option<bool>,
    /// Schemas of the parameters that travel as a one-row IPC stream in a
    /// binary column (struct parameters, WIRE_PROTOCOL §4), by parameter
    /// name. Generic clients such as the CLI build those parameters from
    /// JSON with them. Empty when the server does not publish them (the
    /// reference does not): such a parameter is opaque bytes to a client.
    pub embedded_params: BTreeMap<String, SchemaRef>,
    /// The method's documentation, for people reading about the service
    /// (the HTTP describe page). Held by the server only: describe version
    /// 4 dropped documentation from the wire, so it is neither sent nor in
    /// the protocol hash, and a parsed description has `None`.
    pub doc: Option<String>,
    /// The value each parameter takes when a client leaves it out, as text
    /// for display, by parameter name; a parameter without a default is
    /// absent. Like [`doc`](Self::doc), held by the server only and empty in
    /// a parsed description.
    pub param_defaults: BTreeMap<String, String>,
}

/// Schema of the `__describe__` response batch.
pub fn describe_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("method_type", DataType::Utf8, true),
        Field::new("has_return", DataType::Boolean, true),
        Field::new("params_schema_ipc", DataType::Binary, true),
        Field::new("result_schema_ipc", DataType::Binary, true),
        Field::new("has_header", DataType::Boolean, true),
        Field::new("header_schema_ipc", DataType::Binary, true),
        Field::new("is_exchange", DataType::Boolean, true),
    ]))
}

/// Builds the `__describe__` batch and its custom metadata.
pub fn describe_batch(
    protocol_name: &str,
    methods: &[MethodDescription],
    server_id: &str,
) -> Result<(RecordBatch, Metadata)> {
    let mut sorted: Vec<&MethodDescription> = methods.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));

    let params: Vec<Vec<u8>> = sorted
        .iter()
        .map(|m| serialize_schema(&m.params_schema))
        .collect();
    let results: Vec<Vec<u8>> = sorted
        .iter()
        .map(|m| serialize_schema(&m.result_schema))
        .collect();
    let headers: Vec<Option<Vec<u8>>> = sorted
        .iter()
        .map(|m| m.header_schema.as_ref().map(|s| serialize_schema(s)))
        .collect();

    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            sorted.iter().map(|m| m.name.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            sorted.iter().map(|m| m.method_type.as_str()),
        )),
        Arc::new(BooleanArray::from_iter(
            sorted.iter().map(|m| Some(m.has_return)),
        )),
        Arc::new(BinaryArray::from_iter_values(params.iter())),
        Arc::new(BinaryArray::from_iter_values(results.iter())),
        Arc::new(BooleanArray::from_iter(
            sorted.iter().map(|m| Some(m.header_schema.is_some())),
        )),
        Arc::new(BinaryArray::from_iter(headers.iter().map(Option::as_deref))),
        Arc::new(BooleanArray::from_iter(
            sorted.iter().map(|m| m.is_exchange),
        )),
    ];
    let batch = RecordBatch::try_new(describe_schema(), columns)?;

    let hash = protocol_hash(protocol_name, &sorted, &params, &results, &headers);
    let mut md = Metadata::new()
        .with(metadata::PROTOCOL_NAME, protocol_name)
        .with(metadata::REQUEST_VERSION, metadata::PROTOCOL_VERSION)
        .with(metadata::DESCRIBE_VERSION, DESCRIBE_VERSION)
        .with(metadata::PROTOCOL_HASH, hash)
        .with(metadata::SERVER_ID, server_id);
    if let Some(embedded) = embedded_params_json(&sorted) {
        md = md.with(EMBEDDED_PARAMS_KEY, embedded);
    }
    Ok((batch, md))
}

/// The [`EMBEDDED_PARAMS_KEY`] value, or `None` when no method has an
/// embedded parameter.
fn embedded_params_json(methods: &[&MethodDescription]) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = methods
        .iter()
        .filter(|m| !m.embedded_params.is_empty())
        .map(|m| {
            let params = m
                .embedded_params
                .iter()
                .map(|(name, schema)| {
                    let encoded = BASE64.encode(serialize_schema(schema));
                    (name.clone(), serde_json::Value::String(encoded))
                })
                .collect();
            (m.name.clone(), serde_json::Value::Object(params))
        })
        .collect();
    (!object.is_empty()).then(|| serde_json::Value::Object(object).to_string())
}

/// Reads the [`EMBEDDED_PARAMS_KEY`] value back, by method name.
fn parse_embedded_params(text: &str) -> Result<BTreeMap<String, BTreeMap<String, SchemaRef>>> {
    let malformed = |what: String| {
        WireError::Protocol(format!(
            "__describe__ metadata {EMBEDDED_PARAMS_KEY}: {what}"
        ))
    };
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let methods = json
        .as_object()
        .ok_or_else(|| malformed("not a JSON object".into()))?;
    methods
        .iter()
        .map(|(method, params)| {
            let params = params
                .as_object()
                .ok_or_else(|| malformed(format!("method {method:?} is not an object")))?;
            let schemas = params
                .iter()
                .map(|(param, encoded)| {
                    let bytes = encoded
                        .as_str()
                        .and_then(|text| BASE64.decode(text).ok())
                        .ok_or_else(|| {
                            malformed(format!("{method}.{param} is not a base64 string"))
                        })?;
                    Ok((param.clone(), Arc::new(deserialize_schema(&bytes)?)))
                })
                .collect::<Result<_>>()?;
            Ok((method.clone(), schemas))
        })
        .collect()
}

/// SHA-256 over the canonical describe payload: versions, protocol name,
/// then per method (sorted by name) its flags and schema bytes, separated by
/// ASCII unit (0x1f) and record (0x1e) separators.
fn protocol_hash(
    protocol_name: &str,
    methods: &[&MethodDescription],
    params: &[Vec<u8>],
    results: &[Vec<u8>],
    headers: &[Option<Vec<u8>>],
) -> String {
    const UNIT: &[u8] = b"\x1f";
    const RECORD: &[u8] = b"\x1e";
    let flag = |b: bool| if b { b"1" } else { b"0" };
    let mut h = Sha256::new();
    h.update(b"vgi_rpc.describe.v");
    h.update(DESCRIBE_VERSION.as_bytes());
    h.update(b"|");
    h.update(metadata::PROTOCOL_VERSION.as_bytes());
    h.update(b"|");
    h.update(protocol_name.as_bytes());
    h.update(b"|");
    for (i, m) in methods.iter().enumerate() {
        h.update(UNIT);
        h.update(m.name.as_bytes());
        h.update(RECORD);
        h.update(m.method_type.as_str().as_bytes());
        h.update(RECORD);
        h.update(flag(m.has_return));
        h.update(RECORD);
        h.update(flag(m.header_schema.is_some()));
        h.update(RECORD);
        h.update(match m.is_exchange {
            None => b"-",
            Some(b) => flag(b),
        });
        h.update(RECORD);
        h.update(&params[i]);
        h.update(RECORD);
        h.update(&results[i]);
        h.update(RECORD);
        if let Some(header) = &headers[i] {
            h.update(header);
        }
    }
    h.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A `__describe__` response as a client sees it (the parsed counterpart
/// of [`describe_batch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDescription {
    /// Name of the service (`vgi_rpc.protocol_name`).
    pub protocol_name: String,
    /// Wire protocol version the server speaks.
    pub request_version: String,
    /// Introspection format version of the response.
    pub describe_version: String,
    /// SHA-256 over the canonical describe payload (64 hex characters).
    pub protocol_hash: String,
    /// Identity of the answering server process.
    pub server_id: String,
    /// Every method, sorted by name.
    pub methods: Vec<MethodDescription>,
}

impl ServiceDescription {
    /// The method called `name`, if the service has one.
    pub fn method(&self, name: &str) -> Option<&MethodDescription> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// Parses a `__describe__` response batch and its custom metadata.
///
/// Columns are found by name, so a server that adds columns in a later
/// describe version still parses; a missing or mistyped required column,
/// an unknown method type or an unreadable schema is an error.
pub fn parse_describe_batch(batch: &RecordBatch, md: &Metadata) -> Result<ServiceDescription> {
    let text = |key: &str| md.get(key).unwrap_or_default().to_owned();
    let names = describe_column::<StringArray>(batch, "name")?;
    let method_types = describe_column::<StringArray>(batch, "method_type")?;
    let has_return = describe_column::<BooleanArray>(batch, "has_return")?;
    let params = describe_column::<BinaryArray>(batch, "params_schema_ipc")?;
    let results = describe_column::<BinaryArray>(batch, "result_schema_ipc")?;
    let headers = describe_column::<BinaryArray>(batch, "header_schema_ipc")?;
    // `is_exchange` arrived in describe version 2; older servers omit it.
    let is_exchange = batch
        .column_by_name("is_exchange")
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>());

    let mut embedded = match md.get(EMBEDDED_PARAMS_KEY) {
        Some(text) => parse_embedded_params(text)?,
        None => BTreeMap::new(),
    };
    let mut methods = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let required = |present: bool, column: &str| {
            if present {
                Ok(())
            } else {
                Err(WireError::UnexpectedNull(format!(
                    "__describe__ column {column:?}, row {row}"
                )))
            }
        };
        required(names.is_valid(row), "name")?;
        required(method_types.is_valid(row), "method_type")?;
        required(params.is_valid(row), "params_schema_ipc")?;
        required(results.is_valid(row), "result_schema_ipc")?;
        let method_type = match method_types.value(row) {
            "unary" => MethodType::Unary,
            "stream" => MethodType::Stream,
            other => {
                return Err(WireError::Protocol(format!(
                    "unknown method type {other:?} in __describe__ row {row}"
                )));
            }
        };
        let header_schema = if headers.is_valid(row) {
            Some(Arc::new(deserialize_schema(headers.value(row))?))
        } else {
            None
        };
        methods.push(MethodDescription {
            name: names.value(row).to_owned(),
            method_type,
            has_return: has_return.is_valid(row) && has_return.value(row),
            params_schema: Arc::new(deserialize_schema(params.value(row))?),
            result_schema: Arc::new(deserialize_schema(results.value(row))?),
            header_schema,
            is_exchange: is_exchange.and_then(|c| c.is_valid(row).then(|| c.value(row))),
            embedded_params: embedded.remove(names.value(row)).unwrap_or_default(),
            doc: None,
            param_defaults: BTreeMap::new(),
        });
    }
    methods.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ServiceDescription {
        protocol_name: text(metadata::PROTOCOL_NAME),
        request_version: text(metadata::REQUEST_VERSION),
        describe_version: text(metadata::DESCRIBE_VERSION),
        protocol_hash: text(metadata::PROTOCOL_HASH),
        server_id: text(metadata::SERVER_ID),
        methods,
    })
}

fn describe_column<'a, A: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a A> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| WireError::MissingField(format!("__describe__ column {name:?}")))?;
    column
        .as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| WireError::TypeMismatch {
            expected: format!("__describe__ column {name:?} of the describe schema"),
            found: column.data_type().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::empty_schema;

    fn method(name: &str) -> MethodDescription {
        MethodDescription {
            name: name.into(),
            method_type: MethodType::Unary,
            has_return: true,
            params_schema: Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Utf8,
                false,
            )])),
            result_schema: Arc::new(Schema::new(vec![Field::new(
                "result",
                DataType::Utf8,
                false,
            )])),
            header_schema: None,
            is_exchange: None,
            embedded_params: BTreeMap::new(),
            doc: None,
            param_defaults: BTreeMap::new(),
        }
    }

    #[test]
    fn parse_reads_back_what_describe_batch_built() {
        let mut stream = method("produce");
        stream.method_type = MethodType::Stream;
        stream.has_return = false;
        stream.result_schema = empty_schema();
        stream.header_schema = Some(Arc::new(Schema::new(vec![Field::new(
            "total",
            DataType::Int64,
            false,
        )])));
        let methods = [stream, method("echo")];
        let (batch, md) = describe_batch("Svc", &methods, "server1").unwrap();
        let parsed = parse_describe_batch(&batch, &md).unwrap();
        assert_eq!(parsed.protocol_name, "Svc");
        assert_eq!(parsed.request_version, "1");
        assert_eq!(parsed.describe_version, DESCRIBE_VERSION);
        assert_eq!(parsed.server_id, "server1");
        assert_eq!(
            Some(parsed.protocol_hash.as_str()),
            md.get(metadata::PROTOCOL_HASH)
        );
        let names: Vec<&str> = parsed.methods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["echo", "produce"]);
        assert_eq!(parsed.method("produce"), Some(&methods[0]));
        assert_eq!(parsed.method("echo"), Some(&methods[1]));
        assert_eq!(parsed.method("missing"), None);
    }

    #[test]
    fn embedded_parameter_schemas_round_trip_outside_the_hash() {
        let point = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("y", DataType::Float64, false),
        ]));
        let mut with = method("echo");
        with.embedded_params
            .insert("value".into(), Arc::clone(&point));
        let (batch, md) = describe_batch("Svc", &[with, method("plain")], "s").unwrap();
        let parsed = parse_describe_batch(&batch, &md).unwrap();
        assert_eq!(
            parsed.method("echo").unwrap().embedded_params["value"],
            point
        );
        assert!(parsed.method("plain").unwrap().embedded_params.is_empty());
        let (_, without) = describe_batch("Svc", &[method("echo"), method("plain")], "s").unwrap();
        assert_eq!(without.get(EMBEDDED_PARAMS_KEY), None);
        assert_eq!(
            md.get(metadata::PROTOCOL_HASH),
            without.get(metadata::PROTOCOL_HASH),
            "published schemas must not change the protocol hash"
        );
        let garbled = md
            .clone()
            .with(EMBEDDED_PARAMS_KEY, r#"{"echo": {"value": "!"}}"#);
        let err = parse_describe_batch(&batch, &garbled).unwrap_err();
        assert!(err.to_string().contains("echo.value"), "{err}");
    }

    #[test]
    fn docs_and_defaults_stay_off_the_wire() {
        let plain = [method("echo"), method("plain")];
        let mut documented = plain.clone();
        documented[0].doc = Some("Echoes `value`.".into());
        documented[0]
            .param_defaults
            .insert("value".into(), "\"hi\"".into());
        let (plain_batch, plain_md) = describe_batch("Svc", &plain, "s").unwrap();
        let (batch, md) = describe_batch("Svc", &documented, "s").unwrap();
        assert_eq!(batch, plain_batch);
        assert_eq!(md, plain_md, "the metadata, protocol hash included");
        assert_eq!(parse_describe_batch(&batch, &md).unwrap().methods, plain);
    }

    #[test]
    fn parse_rejects_a_batch_without_the_describe_columns() {
        let (batch, md) = describe_batch("Svc", &[method("a")], "s").unwrap();
        let without_name = batch.project(&[1, 2, 3, 4, 5, 6, 7]).unwrap();
        let err = parse_describe_batch(&without_name, &md).unwrap_err();
        assert!(matches!(err, WireError::MissingField(_)), "{err:?}");
    }

    #[test]
    fn rows_are_sorted_and_hash_is_stable() {
        let a = describe_batch("Svc", &[method("b"), method("a")], "server1").unwrap();
        let b = describe_batch("Svc", &[method("a"), method("b")], "server2").unwrap();
        let names =
            a.0.column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
        assert_eq!(names.value(0), "a");
        let hash = a.1.get(metadata::PROTOCOL_HASH).unwrap();
        assert_eq!(hash.len(), 64);
        assert_eq!(
            Some(hash),
            b.1.get(metadata::PROTOCOL_HASH),
            "server id must not affect the hash"
        );
        let mut changed = method("a");
        changed.params_schema = empty_schema();
        let c = describe_batch("Svc", &[changed, method("b")], "server1").unwrap();
        assert_ne!(Some(hash), c.1.get(metadata::PROTOCOL_HASH));
    }
}
