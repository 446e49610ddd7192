//! What a server tells its observers: the dispatch hooks, the records it
//! hands them, and the OpenTelemetry and Sentry instrumentation.

use std::sync::Arc;

use vgirpc_wire::describe::MethodType;

use super::Server;
use crate::context::Peer;
use crate::observe::{AuthFailure, CallRecord, CallStats, CallStatus, DispatchHook};

impl Server {
    /// Adds a hook told about every completed call on every transport.
    pub fn add_hook(&self, hook: impl DispatchHook) {
        self.inner
            .hooks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(hook));
    }

    /// Records a span per call and, unless turned off, the reference's
    /// request metrics (`rpc.server.requests`, `rpc.server.duration`), as
    /// `config` says. Meant to be called once: a later call replaces the
    /// span recording but adds metrics of its own.
    #[cfg(feature = "otel")]
    pub fn instrument_otel(&self, config: crate::otel::OtelConfig) {
        let (tracing, metrics) = config.split(self.inner.service.protocol_name());
        *self
            .inner
            .otel
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = tracing.map(Arc::new);
        if let Some(metrics) = metrics {
            self.add_hook(metrics);
        }
    }

    /// Reports failed calls to Sentry as `config` says, replacing the
    /// reporting a server built with a bound Sentry client attached itself.
    #[cfg(feature = "sentry")]
    pub fn instrument_sentry(&self, config: crate::sentry::SentryConfig) {
        *self
            .inner
            .sentry
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(Arc::new(crate::sentry::SentryHook::new(config)));
    }

    #[cfg(feature = "sentry")]
    pub(super) fn sentry_hook(&self) -> Option<Arc<crate::sentry::SentryHook>> {
        self.inner
            .sentry
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    #[cfg(feature = "otel")]
    pub(super) fn otel_tracing(&self) -> Option<Arc<crate::otel::Tracing>> {
        self.inner
            .otel
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether any hook reads [`CallRecord::request_data`].
    pub(super) fn hooks_want_request_data(&self) -> bool {
        self.inner
            .hooks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .any(|hook| hook.wants_request_data())
    }

    /// Whether any hook reads [`CallRecord::params`].
    pub(super) fn hooks_want_params(&self) -> bool {
        #[cfg(feature = "sentry")]
        if self.sentry_hook().is_some() {
            return true;
        }
        false
    }

    /// Tells every hook that the transport refused a request for lack of
    /// acceptable credentials (see [`AuthFailure`]).
    pub fn report_auth_failure(&self, error_type: &str, remote_addr: Option<&str>) {
        let hooks = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let failure = AuthFailure {
            protocol: self.inner.service.protocol_name(),
            error_type,
            remote_addr,
        };
        for hook in hooks {
            hook.on_auth_failure(&failure);
        }
    }

    /// Hands a completed call's record to every hook.
    pub fn emit(&self, record: &CallRecord) {
        let hooks = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for hook in hooks {
            hook.on_call(record);
        }
        #[cfg(feature = "sentry")]
        if let Some(hook) = self.sentry_hook() {
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
