//! What a server tells its observers: the dispatch hooks, the records it
//! hands them, and the OpenTelemetry and Sentry instrumentation.

use std::sync::Arc;

use vgirpc_wire::describe::MethodType;

use super::Server;
use crate::context::Peer;
use crate::observe::{AuthFailure, CallRecord, CallStats, CallStatus, DispatchHook};

/// Everything a server tells about its calls, replaced whole when an
/// observer is added, so that a call reads all of it behind one lock and
/// copies nothing.
#[derive(Clone, Default)]
pub(super) struct Observers {
    hooks: Vec<Arc<dyn DispatchHook>>,
    /// Whether any hook reads [`CallRecord::request_data`].
    wants_request_data: bool,
    #[cfg(feature = "otel")]
    tracing: Option<Arc<crate::otel::Tracing>>,
    #[cfg(feature = "sentry")]
    sentry: Option<Arc<crate::sentry::SentryHook>>,
}

impl Observers {
    /// What a new server observes: Sentry's reporting when a client is
    /// bound, the caller's sign of intent, as in the reference.
    pub(super) fn at_start() -> Self {
        Self {
            #[cfg(feature = "sentry")]
            sentry: crate::sentry::SentryHook::client_bound().then(|| {
                Arc::new(crate::sentry::SentryHook::new(
                    crate::sentry::SentryConfig::new(),
                ))
            }),
            ..Self::default()
        }
    }

    #[cfg(feature = "otel")]
    pub(super) fn tracing(&self) -> Option<&Arc<crate::otel::Tracing>> {
        self.tracing.as_ref()
    }

    pub(super) fn wants_request_data(&self) -> bool {
        self.wants_request_data
    }

    /// Whether any observer reads [`CallRecord::params`].
    pub(super) fn wants_params(&self) -> bool {
        #[cfg(feature = "sentry")]
        if self.sentry.is_some() {
            return true;
        }
        false
    }
}

impl Server {
    /// Adds a hook told about every completed call on every transport.
    pub fn add_hook(&self, hook: impl DispatchHook) {
        self.update_observers(|observers| {
            observers.wants_request_data |= hook.wants_request_data();
            observers.hooks.push(Arc::new(hook));
        });
    }

    /// Records a span per call and, unless turned off, the reference's
    /// request metrics (`rpc.server.requests`, `rpc.server.duration`), as
    /// `config` says. Meant to be called once: a later call replaces the
    /// span recording but adds metrics of its own.
    #[cfg(feature = "otel")]
    pub fn instrument_otel(&self, config: crate::otel::OtelConfig) {
        let (tracing, metrics) = config.split(self.inner.service.protocol_name());
        self.update_observers(|observers| observers.tracing = tracing.map(Arc::new));
        if let Some(metrics) = metrics {
            self.add_hook(metrics);
        }
    }

    /// Reports failed calls to Sentry as `config` says, replacing the
    /// reporting a server built with a bound Sentry client attached itself.
    #[cfg(feature = "sentry")]
    pub fn instrument_sentry(&self, config: crate::sentry::SentryConfig) {
        let hook = Arc::new(crate::sentry::SentryHook::new(config));
        self.update_observers(|observers| observers.sentry = Some(hook));
    }

    /// The observers as they are now; ones added later reach later calls.
    pub(super) fn observers(&self) -> Arc<Observers> {
        self.inner
            .observers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn update_observers(&self, change: impl FnOnce(&mut Observers)) {
        let mut current = self
            .inner
            .observers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut changed = Observers::clone(&current);
        change(&mut changed);
        *current = Arc::new(changed);
    }

    /// Tells every hook that the transport refused a request for lack of
    /// acceptable credentials (see [`AuthFailure`]).
    pub fn report_auth_failure(&self, error_type: &str, remote_addr: Option<&str>) {
        let failure = AuthFailure {
            protocol: self.inner.service.protocol_name(),
            error_type,
            remote_addr,
        };
        for hook in &self.observers().hooks {
            hook.on_auth_failure(&failure);
        }
    }

    /// Hands a completed call's record to every hook.
    pub fn emit(&self, record: &CallRecord) {
        let observers = self.observers();
        for hook in &observers.hooks {
            hook.on_call(record);
        }
        #[cfg(feature = "sentry")]
        if let Some(hook) = &observers.sentry {
            hook.on_call(record);
        }
    }

    pub(super) fn new_record(
        &self,
        method: &str,
        method_type: MethodType,
        peer: &Peer,
        request_id: &str,
    ) -> CallRecord {
        CallRecord {
            protocol: self.inner.service.protocol_name().to_owned(),
            protocol_hash: self.inner.protocol_hash.clone(),
            method: method.to_owned(),
            method_type,
            transport: peer.transport,
            request_id: request_id.to_owned(),
            stream_id: None,
            duration: std::time::Duration::ZERO,
            status: CallStatus::Ok,
            cancelled: false,
            request_data: None,
            params: None,
            stats: CallStats::default(),
            auth: peer.auth.clone(),
            remote_addr: String::new(),
            http_status: None,
            request_state: None,
            response_state: None,
            session_action: None,
            session_id: None,
        }
    }
}
