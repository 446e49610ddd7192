//! Sentry error reporting with RPC context (feature `sentry`), as the
//! reference's `SentryConfig` describes it.
//!
//! The hook runs when a call has completed, on the thread that served it,
//! against that thread's Sentry hub: failures become events in a scope
//! carrying the method, the caller and chosen parameters; with performance
//! on, each call also becomes a transaction spanning its duration.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use sentry_core::protocol::{Event, Exception, Level, User, Value};
use sentry_core::{Hub, Scope, TransactionContext};
use sha2::{Digest, Sha256};

use crate::auth::AuthContext;
use crate::context::server_id;
use crate::observe::{CallRecord, CallStatus, DispatchHook};

/// Longest tag value Sentry keeps, in characters.
const TAG_VALUE_MAX_CHARS: usize = 200;

/// Parameters hashed into `vgi.*` tags wherever a call carries them, so
/// that every call of one client session shares a searchable value.
const WELL_KNOWN_IDS: [(&str, &str); 2] = [
    ("attach_id", "vgi.attach_id"),
    ("transaction_id", "vgi.transaction_id"),
];

/// A stable 12-character hex prefix of SHA-256, for tagging opaque,
/// high-cardinality ids. Bytes hash as their lowercase hex text, so an id
/// held as bytes and the same id held as hex get the same tag.
pub fn short_hash<'a>(value: impl Into<Hashable<'a>>) -> String {
    short_hash_of_length(value, 12)
}

/// [`short_hash`] with a prefix of `length` hex characters (at most 64).
pub fn short_hash_of_length<'a>(value: impl Into<Hashable<'a>>, length: usize) -> String {
    let digest = match value.into() {
        Hashable::Text(text) => Sha256::digest(text.as_bytes()),
        Hashable::Bytes(bytes) => Sha256::digest(hex(bytes).as_bytes()),
    };
    let mut out = hex(&digest);
    out.truncate(length);
    out
}

/// What [`short_hash`] takes: text, or bytes standing for their hex form.
#[derive(Debug, Clone, Copy)]
pub enum Hashable<'a> {
    /// Hashed as its UTF-8 bytes.
    Text(&'a str),
    /// Hashed as its lowercase hex text.
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Hashable<'a> {
    fn from(text: &'a str) -> Self {
        Hashable::Text(text)
    }
}

impl<'a> From<&'a String> for Hashable<'a> {
    fn from(text: &'a String) -> Self {
        Hashable::Text(text)
    }
}

impl<'a> From<&'a [u8]> for Hashable<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Hashable::Bytes(bytes)
    }
}

impl<'a> From<&'a Vec<u8>> for Hashable<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        Hashable::Bytes(bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One parameter of a call, as read back from its request.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A string.
    Text(String),
    /// A binary value.
    Bytes(Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A list.
    List(Vec<ParamValue>),
    /// A struct's fields.
    Struct(Vec<(String, ParamValue)>),
    /// Null, or a type recorded nowhere (maps, dates...).
    Other,
}

/// A call's parameters, in declaration order.
pub type Params = Vec<(String, ParamValue)>;

type Redactor = Arc<dyn Fn(Params) -> Params + Send + Sync>;

/// How failed calls reach Sentry, as the reference's `SentryConfig`.
///
/// With the `sentry` feature, a server built while a Sentry client is bound
/// reports with [`SentryConfig::new`]'s defaults;
/// [`Server::instrument_sentry`](crate::Server::instrument_sentry) replaces
/// that with a configuration of its own.
#[derive(Clone)]
pub struct SentryConfig {
    enable_error_capture: bool,
    enable_performance: bool,
    record_request_context: bool,
    custom_tags: Vec<(String, String)>,
    ignored_error_types: Vec<String>,
    op_name: String,
    claim_tags: Vec<(String, String)>,
    user_claim_map: Vec<(String, String)>,
    set_transaction_name: bool,
    record_params: bool,
    tag_params: Vec<String>,
    param_redactor: Option<Redactor>,
    max_param_value_bytes: usize,
}

impl fmt::Debug for SentryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryConfig")
            .field("enable_error_capture", &self.enable_error_capture)
            .field("enable_performance", &self.enable_performance)
            .field("record_params", &self.record_params)
            .field("tag_params", &self.tag_params)
            .finish_non_exhaustive()
    }
}

impl Default for SentryConfig {
    fn default() -> Self {
        Self {
            enable_error_capture: true,
            enable_performance: false,
            record_request_context: true,
            custom_tags: Vec::new(),
            ignored_error_types: Vec::new(),
            op_name: "rpc.server".to_owned(),
            claim_tags: Vec::new(),
            user_claim_map: [
                ("username", "preferred_username"),
                ("email", "email"),
                ("name", "name"),
            ]
            .map(|(field, claim)| (field.to_owned(), claim.to_owned()))
            .into(),
            set_transaction_name: true,
            record_params: false,
            tag_params: Vec::new(),
            param_redactor: None,
            max_param_value_bytes: 1024,
        }
    }
}

impl SentryConfig {
    /// The reference's defaults: errors captured with request context, the
    /// transaction named `rpc {method}`, no parameters, no performance.
    pub fn new() -> Self {
        Self::default()
    }

    /// Failed calls are not reported.
    pub fn without_error_capture(mut self) -> Self {
        self.enable_error_capture = false;
        self
    }

    /// Each call also becomes a transaction `vgi_rpc/{method}`.
    pub fn with_performance(mut self) -> Self {
        self.enable_performance = true;
        self
    }

    /// Leaves out the `rpc` context, the user and the auth tags.
    pub fn without_request_context(mut self) -> Self {
        self.record_request_context = false;
        self
    }

    /// Adds a tag to every event.
    pub fn with_custom_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom_tags.push((key.into(), value.into()));
        self
    }

    /// Errors of this type (as the client sees it, `PermissionError`...)
    /// are not reported.
    pub fn with_ignored_error_type(mut self, error_type: impl Into<String>) -> Self {
        self.ignored_error_types.push(error_type.into());
        self
    }

    /// The operation of performance transactions (default `rpc.server`).
    pub fn with_op_name(mut self, op: impl Into<String>) -> Self {
        self.op_name = op.into();
        self
    }

    /// Tags the caller's claim `claim` (a string, number or boolean) as `tag`.
    pub fn with_claim_tag(mut self, claim: impl Into<String>, tag: impl Into<String>) -> Self {
        self.claim_tags.push((claim.into(), tag.into()));
        self
    }

    /// Fills the Sentry user's `field` (`username`, `email`, `name`, or
    /// another) from the claim `claim`, replacing the default mapping of
    /// that field.
    pub fn with_user_claim(mut self, field: impl Into<String>, claim: impl Into<String>) -> Self {
        let field = field.into();
        self.user_claim_map.retain(|(f, _)| *f != field);
        self.user_claim_map.push((field, claim.into()));
        self
    }

    /// Keeps the transaction name the transport gave.
    pub fn without_transaction_name(mut self) -> Self {
        self.set_transaction_name = false;
        self
    }

    /// Records the parameters as `rpc.param.{name}`: strings, numbers,
    /// booleans and lists of one of them, after the redactor.
    pub fn with_params_recorded(mut self) -> Self {
        self.record_params = true;
        self
    }

    /// Also tags the parameter `name` as `rpc.param.{name}` when it is a
    /// string, number or boolean; for low-cardinality values only.
    pub fn with_tag_param(mut self, name: impl Into<String>) -> Self {
        self.tag_params.push(name.into());
        self
    }

    /// Replaces the default redactor, which drops parameters whose names
    /// contain password, token, secret, key or authorization.
    pub fn with_param_redactor(
        mut self,
        redactor: impl Fn(Params) -> Params + Send + Sync + 'static,
    ) -> Self {
        self.param_redactor = Some(Arc::new(redactor));
        self
    }

    /// Strings longer than this many UTF-8 bytes are cut (default 1024).
    pub fn with_max_param_value_bytes(mut self, bytes: usize) -> Self {
        self.max_param_value_bytes = bytes;
        self
    }

    /// The parameters recorded: redacted, primitives and homogeneous lists
    /// of them only, strings cut at a character boundary within the limit.
    pub fn safe_params(&self, params: Params) -> Vec<(String, Value)> {
        let params = match &self.param_redactor {
            Some(redactor) => redactor(params),
            None => default_redactor(params),
        };
        params
            .into_iter()
            .filter_map(|(key, value)| {
                let value = match value {
                    ParamValue::Text(text) => Value::from(self.cut(text)),
                    ParamValue::List(items) => homogeneous(&items)?,
                    primitive => primitive_json(&primitive)?,
                };
                Some((key, value))
            })
            .collect()
    }

    fn cut(&self, mut text: String) -> String {
        if text.len() > self.max_param_value_bytes {
            let mut end = self.max_param_value_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}

fn default_redactor(params: Params) -> Params {
    const CREDENTIALS: [&str; 5] = ["password", "token", "secret", "key", "authorization"];
    params
        .into_iter()
        .filter(|(key, _)| {
            let key = key.to_lowercase();
            !CREDENTIALS.iter().any(|word| key.contains(word))
        })
        .collect()
}

fn primitive_json(value: &ParamValue) -> Option<Value> {
    match value {
        ParamValue::Text(text) => Some(Value::from(text.as_str())),
        ParamValue::Bool(b) => Some(Value::from(*b)),
        ParamValue::Int(i) => Some(Value::from(*i)),
        ParamValue::Float(x) => Some(Value::from(*x)),
        _ => None,
    }
}

/// A non-empty list whose items are all of one primitive type.
fn homogeneous(items: &[ParamValue]) -> Option<Value> {
    let first = items.first()?;
    let same = items
        .iter()
        .all(|item| std::mem::discriminant(item) == std::mem::discriminant(first));
    if !same {
        return None;
    }
    items
        .iter()
        .map(primitive_json)
        .collect::<Option<Vec<_>>>()
        .map(Value::from)
}

/// A primitive as a tag value: Python's `str()` of it, at most 200 characters.
fn tag_text(value: &ParamValue) -> Option<String> {
    let text = match value {
        ParamValue::Text(text) => text.clone(),
        ParamValue::Bool(true) => "True".to_owned(),
        ParamValue::Bool(false) => "False".to_owned(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(x) => format!("{x:?}"),
        _ => return None,
    };
    Some(text.chars().take(TAG_VALUE_MAX_CHARS).collect())
}

/// The first string or bytes value named `name`: a parameter, a field of a
/// struct parameter, or a field of that struct's `bind_call`.
fn well_known(params: &Params, name: &str) -> Option<String> {
    let hash = |value: &ParamValue| match value {
        ParamValue::Text(text) => Some(short_hash(text)),
        ParamValue::Bytes(bytes) => Some(short_hash(bytes)),
        _ => None,
    };
    let field = |fields: &[(String, ParamValue)], wanted: &str| {
        fields
            .iter()
            .find(|(n, _)| n == wanted)
            .map(|(_, v)| v.clone())
    };
    if let Some(found) = field(params, name).as_ref().and_then(hash) {
        return Some(found);
    }
    params.iter().find_map(|(_, value)| {
        let ParamValue::Struct(fields) = value else {
            return None;
        };
        field(fields, name)
            .as_ref()
            .and_then(hash)
            .or_else(|| match field(fields, "bind_call")? {
                ParamValue::Struct(inner) => field(&inner, name).as_ref().and_then(hash),
                _ => None,
            })
    })
}

/// A claim as a tag value, as the reference prints it.
fn claim_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(true) => Some("True".to_owned()),
        serde_json::Value::Bool(false) => Some("False".to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The parameters of a record's request.
fn decode_params(record: &CallRecord) -> Params {
    record.params.as_ref().map(row_params).unwrap_or_default()
}

fn row_params(batch: &RecordBatch) -> Params {
    if batch.num_rows() == 0 {
        return Vec::new();
    }
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| (field.name().clone(), value_at(column, 0)))
        .collect()
}

fn value_at(column: &ArrayRef, row: usize) -> ParamValue {
    if column.is_null(row) {
        return ParamValue::Other;
    }
    match column.data_type() {
        DataType::Utf8 => ParamValue::Text(column.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => ParamValue::Text(column.as_string::<i64>().value(row).to_owned()),
        DataType::Binary => ParamValue::Bytes(column.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => ParamValue::Bytes(column.as_binary::<i64>().value(row).to_vec()),
        DataType::Boolean => ParamValue::Bool(column.as_boolean().value(row)),
        DataType::Int8 => ParamValue::Int(column.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => ParamValue::Int(column.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => ParamValue::Int(column.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => ParamValue::Int(column.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => ParamValue::Int(column.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => ParamValue::Int(column.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => ParamValue::Int(column.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => i64::try_from(column.as_primitive::<UInt64Type>().value(row))
            .map_or(ParamValue::Other, ParamValue::Int),
        DataType::Float32 => {
            ParamValue::Float(column.as_primitive::<Float32Type>().value(row).into())
        }
        DataType::Float64 => ParamValue::Float(column.as_primitive::<Float64Type>().value(row)),
        DataType::List(_) => {
            let items = column.as_list::<i32>().value(row);
            ParamValue::List((0..items.len()).map(|i| value_at(&items, i)).collect())
        }
        DataType::Struct(fields) => {
            let array = column.as_struct();
            ParamValue::Struct(
                fields
                    .iter()
                    .zip(array.columns())
                    .map(|(field, child)| (field.name().clone(), value_at(child, row)))
                    .collect(),
            )
        }
        _ => ParamValue::Other,
    }
}

/// Reports completed calls to the Sentry hub of the serving thread.
pub(crate) struct SentryHook {
    config: SentryConfig,
}

impl SentryHook {
    pub(crate) fn new(config: SentryConfig) -> Self {
        Self { config }
    }

    /// Whether the calling thread's hub has a client to report to.
    pub(crate) fn client_bound() -> bool {
        Hub::current().client().is_some()
    }

    fn configure(&self, scope: &mut Scope, record: &CallRecord, params: &Params) {
        let config = &self.config;
        let method_type = record.method_type.as_str();
        if config.set_transaction_name {
            scope.set_transaction(Some(&format!("rpc {}", record.method)));
        }
        scope.set_tag("rpc.method", &record.method);
        scope.set_tag("rpc.method_type", method_type);
        for name in &config.tag_params {
            if let Some(text) = params
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| tag_text(v))
            {
                scope.set_tag(&format!("rpc.param.{name}"), text);
            }
        }
        if config.record_request_context {
            let context = [
                ("method", record.method.as_str()),
                ("method_type", method_type),
                ("service", record.protocol.as_str()),
                ("server_id", server_id()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect::<std::collections::BTreeMap<_, _>>();
            scope.set_context("rpc", sentry_core::protocol::Context::Other(context));
            self.identify(scope, &record.auth);
        }
        for (key, value) in &config.custom_tags {
            scope.set_tag(key, value);
        }
        for (field, tag) in WELL_KNOWN_IDS {
            if let Some(hashed) = well_known(params, field) {
                scope.set_tag(tag, hashed);
            }
        }
        if config.record_params {
            for (key, value) in config.safe_params(params.clone()) {
                scope.set_extra(&format!("rpc.param.{key}"), value);
            }
        }
    }

    /// The user from the principal and claims, and the auth tags.
    fn identify(&self, scope: &mut Scope, auth: &AuthContext) {
        let mut user = User::default();
        let mut known = false;
        if let Some(principal) = auth.principal.as_deref().filter(|p| !p.is_empty()) {
            user.id = Some(principal.to_owned());
            known = true;
        }
        for (field, claim) in &self.config.user_claim_map {
            let Some(value) = auth
                .claims
                .get(claim)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            known = true;
            match field.as_str() {
                "username" => user.username = Some(value.to_owned()),
                "email" => user.email = Some(value.to_owned()),
                "name" => {
                    user.other.insert("name".to_owned(), Value::from(value));
                }
                other => {
                    user.other.insert(other.to_owned(), Value::from(value));
                }
            }
        }
        if known {
            scope.set_user(Some(user));
        }
        if let Some(domain) = auth.domain.as_deref().filter(|d| !d.is_empty()) {
            scope.set_tag("auth.domain", domain);
        }
        scope.set_tag(
            "auth.authenticated",
            if auth.authenticated { "true" } else { "false" },
        );
        for (claim, tag) in &self.config.claim_tags {
            if let Some(text) = auth.claims.get(claim).and_then(claim_text) {
                scope.set_tag(tag, text);
            }
        }
    }

    fn transaction(&self, record: &CallRecord, params: &Params) {
        let ctx =
            TransactionContext::new(&format!("vgi_rpc/{}", record.method), &self.config.op_name);
        let start = SystemTime::now()
            .checked_sub(record.duration)
            .unwrap_or_else(SystemTime::now);
        let transaction = sentry_core::start_transaction_with_timestamp(ctx, start);
        transaction.set_data("rpc.system", Value::from("vgi_rpc"));
        transaction.set_data("rpc.service", Value::from(record.protocol.as_str()));
        transaction.set_data("rpc.method", Value::from(record.method.as_str()));
        transaction.set_data("rpc.method_type", Value::from(record.method_type.as_str()));
        if let Some(stream_id) = &record.stream_id {
            transaction.set_data("rpc.stream_id", Value::from(stream_id.as_str()));
        }
        if self.config.record_params {
            for (key, value) in self.config.safe_params(params.clone()) {
                transaction.set_data(&format!("rpc.param.{key}"), value);
            }
        }
        for (field, tag) in WELL_KNOWN_IDS {
            if let Some(hashed) = well_known(params, field) {
                transaction.set_data(tag, Value::from(hashed));
            }
        }
        transaction.set_status(if record.is_error() {
            sentry_core::protocol::SpanStatus::InternalError
        } else {
            sentry_core::protocol::SpanStatus::Ok
        });
        transaction.finish();
    }
}

impl DispatchHook for SentryHook {
    fn on_call(&self, record: &CallRecord) {
        // The scope is only seen by what is sent from it: an error's event
        // or a transaction.
        if !record.is_error() && !self.config.enable_performance {
            return;
        }
        let hub = Hub::current();
        if hub.client().is_none() {
            return;
        }
        let params = decode_params(record);
        hub.with_scope(
            |scope| self.configure(scope, record, &params),
            || {
                if self.config.enable_performance {
                    self.transaction(record, &params);
                }
                let CallStatus::Error {
                    error_type,
                    message,
                } = &record.status
                else {
                    return;
                };
                if !self.config.enable_error_capture
                    || self.config.ignored_error_types.contains(error_type)
                {
                    return;
                }
                hub.capture_event(Event {
                    level: Level::Error,
                    exception: vec![Exception {
                        ty: error_type.clone(),
                        value: Some(message.clone()),
                        ..Exception::default()
                    }]
                    .into(),
                    ..Event::default()
                });
            },
        );
    }
}
