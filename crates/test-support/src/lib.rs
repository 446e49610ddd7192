//! Helpers shared by the tests of the vgi-rpc crates.
//!
//! [`SpanCapture`] is a tracing layer that records every event together
//! with the span it happened in, so a test can check which span (and which
//! span fields) a method's own logging ran under:
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! use vgirpc_test_support::SpanCapture;
//!
//! let capture = SpanCapture::default();
//! let subscriber = tracing_subscriber::Registry::default().with(capture.clone());
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("rpc", rpc.method = "echo");
//!     let _entered = span.enter();
//!     tracing::info!("echoing");
//! });
//! let span = capture.span_of("echoing", "rpc").expect("logged inside the span");
//! assert_eq!(span["rpc.method"], "echo");
//! ```
//!
//! [`pki`] makes a CA and certificates for TLS tests; [`azurite`] creates
//! containers in Azure's storage emulator; [`serve_in_process`] runs a
//! server inside the test process; [`string_call`] writes a request by
//! hand; [`proc_status::status_field`] reads what a process costs;
//! [`noise`] makes bytes no compressor shrinks.

pub mod azurite;
mod noise;
pub mod pki;
pub mod proc_status;
mod serve;
mod wire;

pub use noise::noise;
pub use serve::serve_in_process;
pub use wire::string_call;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Field names and their values, as text.
pub type Fields = BTreeMap<String, String>;

/// One recorded event.
#[derive(Debug, Clone)]
pub struct CapturedEvent {
    /// The event's message (its `message` field).
    pub message: String,
    /// The innermost span the event happened in: its name and its fields,
    /// including those recorded after it was created.
    pub span: Option<(String, Fields)>,
}

/// A tracing layer that records every event with its span.
#[derive(Debug, Clone, Default)]
pub struct SpanCapture {
    spans: Arc<Mutex<BTreeMap<u64, (String, Fields)>>>,
    events: Arc<Mutex<Vec<CapturedEvent>>>,
}

impl SpanCapture {
    /// Every event recorded so far, in order.
    pub fn events(&self) -> Vec<CapturedEvent> {
        lock(&self.events).clone()
    }

    /// The fields of the span named `span` in which the first event with
    /// `message` happened, if there was such an event inside such a span.
    pub fn span_of(&self, message: &str, span: &str) -> Option<Fields> {
        self.spans_of(message, span).into_iter().next()
    }

    /// The fields of the span named `span` of each event with `message`
    /// that happened inside such a span, in order.
    pub fn spans_of(&self, message: &str, span: &str) -> Vec<Fields> {
        lock(&self.events)
            .iter()
            .filter(|event| event.message == message)
            .filter_map(|event| event.span.as_ref())
            .filter(|(name, _)| name == span)
            .map(|(_, fields)| fields.clone())
            .collect()
    }
}

/// A test that panicked while holding a lock has failed already; the data
/// is still worth reading.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> Layer<S> for SpanCapture
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let name = attrs.metadata().name().to_owned();
        lock(&self.spans).insert(id.into_u64(), (name, fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some((_, fields)) = lock(&self.spans).get_mut(&id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        let span = ctx
            .lookup_current()
            .and_then(|span| lock(&self.spans).get(&span.id().into_u64()).cloned());
        lock(&self.events).push(CapturedEvent {
            message: fields.remove("message").unwrap_or_default(),
            span,
        });
    }
}
