//! Sentry error reporting with RPC context (feature `sentry`), as the
//! reference's `SentryConfig` describes it.
//!
//! The hook runs when a call has completed, on the thread that served it,
//! against that thread's Sentry hub: failures become events in a scope
//! carrying the method, the caller and chosen parameters; with performance
//! on, each call also becomes a transaction spanning its duration; a span
//! the transport bound to the scope (a request's transaction) takes the
//! call's `rpc.*` data whether or not the call failed.

mod params;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use sentry_core::protocol::{Event, Exception, Level, SpanStatus, User, Value};
use sentry_core::{
    Client, Hub, Scope, TracesSamplingStrategy, TransactionContext, TransactionOrSpan,
};

pub use params::{Hashable, ParamValue, Params, short_hash, short_hash_of_length};
use params::{decode_params, default_redactor, homogeneous, primitive_json, tag_text, well_known};

use crate::auth::AuthContext;
use crate::context::server_id;
use crate::observe::{CallRecord, CallStatus, DispatchHook};

/// Parameters hashed into `vgi.*` tags wherever a call carries them, so
/// that every call of one client session shares a searchable value.
const WELL_KNOWN_IDS: [(&str, &str); 2] = [
    ("attach_id", "vgi.attach_id"),
    ("transaction_id", "vgi.transaction_id"),
];

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

    /// Replaces the whole mapping of Sentry user fields to claims, for
    /// identity providers whose claims have other names; fields left out
    /// are not filled from any claim.
    pub fn with_user_claim_map<F, C>(mut self, map: impl IntoIterator<Item = (F, C)>) -> Self
    where
        F: Into<String>,
        C: Into<String>,
    {
        self.user_claim_map = map
            .into_iter()
            .map(|(field, claim)| (field.into(), claim.into()))
            .collect();
        self
    }

    /// Keeps the transaction name the transport gave.
    pub fn without_transaction_name(mut self) -> Self {
        self.set_transaction_name = false;
        self
    }

    /// Records the parameters as span data `rpc.param.{name}` (on the
    /// performance transaction and the span bound to the scope): strings,
    /// numbers, booleans and lists of one of them, after the redactor.
    /// Error events do not carry them; [`with_tag_param`](Self::with_tag_param)
    /// makes tags of chosen ones.
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
    /// contain password, token, secret, key or authorization (in any case);
    /// `|params| params` records them all.
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

/// Reports completed calls to the Sentry hub of the serving thread.
pub(crate) struct SentryHook {
    config: SentryConfig,
}

/// Whether `hub` has a client that sends anything: one bound without a DSN
/// reports nothing, so it is no reason to pay for reporting.
fn reporting(hub: &Hub) -> bool {
    hub.client().is_some_and(|client| client.is_enabled())
}

/// Whether `client` may send a span. With tracing disabled (the
/// SDK's default) it sends none, whatever the trace's sampling decision,
/// so data set on the scope's span is never seen and the scope, which
/// reading costs a copy of it, need not be read for it.
fn sends_spans(client: &Client) -> bool {
    !matches!(
        client.options().traces_sampling_strategy,
        TracesSamplingStrategy::Disabled
    )
}

impl SentryHook {
    pub(crate) fn new(config: SentryConfig) -> Self {
        Self { config }
    }

    /// Whether the calling thread's hub has a client to report to.
    pub(crate) fn client_bound() -> bool {
        reporting(&Hub::current())
    }

    /// Tags, context and user of what is sent from the call's scope.
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
                "id" => user.id = Some(value.to_owned()),
                "username" => user.username = Some(value.to_owned()),
                "email" => user.email = Some(value.to_owned()),
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

    /// What spans carry for Trace Explorer: the call's identity, its stream
    /// (never a tag: one value per stream), the recorded parameters and the
    /// hashed ids.
    fn span_data(&self, record: &CallRecord, params: &Params) -> Vec<(String, Value)> {
        let mut data: Vec<(String, Value)> = [
            ("rpc.system", "vgi_rpc"),
            ("rpc.service", record.protocol.as_str()),
            ("rpc.method", record.method.as_str()),
            ("rpc.method_type", record.method_type.as_str()),
        ]
        .into_iter()
        .chain(record.stream_id.as_deref().map(|id| ("rpc.stream_id", id)))
        .map(|(key, value)| (key.to_owned(), Value::from(value)))
        .collect();
        if self.config.record_params {
            data.extend(
                self.config
                    .safe_params(params.clone())
                    .into_iter()
                    .map(|(key, value)| (format!("rpc.param.{key}"), value)),
            );
        }
        for (field, tag) in WELL_KNOWN_IDS {
            if let Some(hashed) = well_known(params, field) {
                data.push((tag.to_owned(), Value::from(hashed)));
            }
        }
        data
    }

    fn transaction(&self, record: &CallRecord, data: Vec<(String, Value)>) {
        let ctx =
            TransactionContext::new(&format!("vgi_rpc/{}", record.method), &self.config.op_name);
        let start = SystemTime::now()
            .checked_sub(record.duration)
            .unwrap_or_else(SystemTime::now);
        let transaction = sentry_core::start_transaction_with_timestamp(ctx, start);
        for (key, value) in data {
            transaction.set_data(&key, value);
        }
        transaction.set_status(if record.is_error() {
            SpanStatus::InternalError
        } else {
            SpanStatus::Ok
        });
        transaction.finish();
    }

    fn capture(&self, hub: &Hub, record: &CallRecord) {
        let CallStatus::Error {
            error_type,
            message,
        } = &record.status
        else {
            return;
        };
        if !self.config.enable_error_capture || self.config.ignored_error_types.contains(error_type)
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
    }
}

impl DispatchHook for SentryHook {
    fn on_call(&self, record: &CallRecord) {
        let hub = Hub::current();
        let Some(client) = hub.client().filter(|client| client.is_enabled()) else {
            return;
        };
        let performance = self.config.enable_performance;
        // A span the transport bound (a request's transaction) takes the
        // call's data even when the call succeeded.
        let active: Option<TransactionOrSpan> = if performance || sends_spans(&client) {
            hub.configure_scope(|scope| scope.get_span())
        } else {
            None
        };
        // The scope is only seen by what is sent from it: an error's event,
        // a transaction or the active span.
        if !record.is_error() && !performance && active.is_none() {
            return;
        }
        let params = decode_params(record);
        let data = (performance || active.is_some()).then(|| self.span_data(record, &params));
        if let (Some(span), Some(data)) = (&active, &data) {
            for (key, value) in data {
                span.set_data(key, value.clone());
            }
        }
        hub.with_scope(
            |scope| self.configure(scope, record, &params),
            || {
                if let Some(data) = data.filter(|_| performance) {
                    self.transaction(record, data);
                }
                self.capture(&hub, record);
            },
        );
    }
}
