//! The spans a call runs in: a `tracing` span for the application's
//! diagnostics and, when the server is instrumented (feature `otel`), the
//! OpenTelemetry dispatch span, entered and left together.

use std::future::Future;

use tracing::Instrument as _;
use vgirpc_wire::describe::MethodType;
use vgirpc_wire::metadata::Metadata;

use crate::auth::AuthContext;

/// A call's spans. Cloning shares them: a stream's span covers every step.
#[derive(Debug, Clone)]
pub(crate) struct CallSpan {
    pub(crate) tracing: tracing::Span,
    #[cfg(feature = "otel")]
    pub(crate) otel: Option<crate::otel::OtelSpan>,
}

/// What a span is started from.
#[cfg_attr(
    not(feature = "otel"),
    expect(
        dead_code,
        reason = "the OpenTelemetry span reads what the tracing one does not"
    )
)]
pub(crate) struct SpanStart<'a> {
    pub(crate) method: &'a str,
    pub(crate) method_type: MethodType,
    /// For a stream resumed from its saved state.
    pub(crate) stream_id: Option<&'a str>,
    pub(crate) auth: &'a AuthContext,
    /// The request's metadata, which may name the caller's trace.
    pub(crate) metadata: Option<&'a Metadata>,
}

/// While alive, the call's spans are the current ones on this thread.
pub(crate) struct Entered<'a> {
    _tracing: tracing::span::Entered<'a>,
    #[cfg(feature = "otel")]
    _otel: Option<opentelemetry::ContextGuard>,
}

impl CallSpan {
    /// Makes the spans current until the guard is dropped.
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            _tracing: self.tracing.enter(),
            #[cfg(feature = "otel")]
            _otel: self
                .otel
                .as_ref()
                .map(|otel| otel.context().clone().attach()),
        }
    }

    /// Runs `work` with the spans current.
    pub(crate) fn in_scope<T>(&self, work: impl FnOnce() -> T) -> T {
        let _entered = self.enter();
        work()
    }

    /// Runs `future` with the spans current at each poll.
    #[cfg(not(feature = "otel"))]
    pub(crate) fn instrumented<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        future.instrument(self.tracing.clone())
    }

    /// Runs `future` with the spans current at each poll.
    #[cfg(feature = "otel")]
    pub(crate) fn instrumented<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        use opentelemetry::context::FutureExt as _;
        let context = match &self.otel {
            Some(otel) => otel.context().clone(),
            None => opentelemetry::Context::current(),
        };
        future
            .instrument(self.tracing.clone())
            .with_context(context)
    }

    /// Names the stream the call opened.
    pub(crate) fn record_stream_id(&self, stream_id: &str) {
        self.tracing.record("rpc.stream_id", stream_id);
        #[cfg(feature = "otel")]
        if let Some(otel) = &self.otel {
            otel.set_stream_id(stream_id);
        }
    }

    /// Ends the dispatch span as a unary call's answer says.
    #[cfg(feature = "otel")]
    pub(crate) fn end(&self, answer: &crate::answer::Answer) {
        if let Some(otel) = &self.otel {
            otel.end(answer);
        }
    }

    /// Ends the dispatch span as succeeded, with the work done.
    #[cfg(feature = "otel")]
    pub(crate) fn succeed(&self, stats: &crate::observe::CallStats) {
        if let Some(otel) = &self.otel {
            otel.succeed(stats);
        }
    }

    /// Ends the dispatch span as failed with `error`.
    #[cfg(feature = "otel")]
    pub(crate) fn fail(
        &self,
        error: &vgirpc_wire::log::ErrorInfo,
        stats: &crate::observe::CallStats,
    ) {
        if let Some(otel) = &self.otel {
            otel.fail(error, stats);
        }
    }
}
