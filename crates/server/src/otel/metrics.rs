//! The reference's request metrics: a counter of calls and a histogram of
//! their durations, by method and outcome, and the authentication failures
//! counted before any call.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use vgirpc_wire::describe::MethodType;

use super::{AUTH_FAILURE_METRIC, DURATION_METRIC, REQUESTS_METRIC};
use crate::observe::{AuthFailure, CallRecord, CallStatus, DispatchHook};

/// Counts calls and records their durations, with the reference's names,
/// units and attributes.
pub(crate) struct RequestMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    auth_failures: Counter<u64>,
    /// The attributes of each method's calls, made once: building them
    /// per call (two strings copied, a vector) was a good part of what
    /// metrics cost a call.
    attributes: RwLock<HashMap<String, MethodAttributes>>,
}

/// At most this many methods have cached attributes; records of further
/// names (a hook fed by hand) get theirs built per call.
const CACHED_METHODS: usize = 1024;

/// One method's metric attributes, for each outcome.
struct MethodAttributes {
    protocol: String,
    method_type: MethodType,
    ok: Vec<KeyValue>,
    error: Vec<KeyValue>,
}

impl MethodAttributes {
    fn new(record: &CallRecord) -> Self {
        let fixed = [
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", record.protocol.clone()),
            KeyValue::new("rpc.method", record.method.clone()),
            KeyValue::new("rpc.vgi_rpc.method_type", record.method_type.as_str()),
        ];
        let with_status = |status: &'static str| {
            let mut attributes = fixed.to_vec();
            attributes.push(KeyValue::new("status", status));
            attributes
        };
        Self {
            protocol: record.protocol.clone(),
            method_type: record.method_type,
            ok: with_status("ok"),
            error: with_status("error"),
        }
    }

    fn describes(&self, record: &CallRecord) -> bool {
        self.protocol == record.protocol && self.method_type == record.method_type
    }

    fn for_status(&self, status: &CallStatus) -> &[KeyValue] {
        match status {
            CallStatus::Ok => &self.ok,
            CallStatus::Error { .. } => &self.error,
        }
    }
}

impl RequestMetrics {
    pub(super) fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .u64_counter(REQUESTS_METRIC)
                .with_unit("{request}")
                .with_description("Number of RPC requests handled")
                .build(),
            duration: meter
                .f64_histogram(DURATION_METRIC)
                .with_unit("s")
                .with_description("Duration of RPC requests")
                .build(),
            auth_failures: meter
                .u64_counter(AUTH_FAILURE_METRIC)
                .with_unit("{failure}")
                .with_description("Number of authentication failures before RPC dispatch")
                .build(),
            attributes: RwLock::new(HashMap::new()),
        }
    }

    fn record(&self, record: &CallRecord, attributes: &[KeyValue]) {
        let domain = record.auth.domain.as_deref().filter(|d| !d.is_empty());
        let seconds = record.duration.as_secs_f64();
        match domain {
            None => {
                self.requests.add(1, attributes);
                self.duration.record(seconds, attributes);
            }
            Some(domain) => {
                let mut attributes = attributes.to_vec();
                attributes.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain.to_owned()));
                self.requests.add(1, &attributes);
                self.duration.record(seconds, &attributes);
            }
        }
    }
}

impl DispatchHook for RequestMetrics {
    fn on_call(&self, record: &CallRecord) {
        {
            let cached = self
                .attributes
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(method) = cached.get(&record.method)
                && method.describes(record)
            {
                return self.record(record, method.for_status(&record.status));
            }
        }
        let method = MethodAttributes::new(record);
        self.record(record, method.for_status(&record.status));
        let mut cached = self
            .attributes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cached.len() < CACHED_METHODS {
            cached.insert(record.method.clone(), method);
        }
    }

    fn wants_request_data(&self) -> bool {
        false
    }

    fn on_auth_failure(&self, failure: &AuthFailure<'_>) {
        self.auth_failures.add(
            1,
            &[
                KeyValue::new("rpc.system", "vgi_rpc"),
                KeyValue::new("rpc.service", failure.protocol.to_owned()),
                KeyValue::new("error.type", failure.error_type.to_owned()),
            ],
        );
    }
}
