//! The reference's request metrics: a counter of calls and a histogram of
//! their durations, by method and outcome, and the authentication failures
//! counted before any call.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram, Meter};
use vgirpc_wire::describe::MethodType;

use super::{AUTH_FAILURE_METRIC, DURATION_METRIC, REQUESTS_METRIC};
use crate::observe::{AuthFailure, CallRecord, CallStatus, DispatchHook};

/// Counts calls and records their durations, with the reference's names,
/// units and attributes.
pub(crate) struct RequestMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    auth_failures: Counter<u64>,
    /// The attributes of each method's calls and the instruments bound to
    /// them, made once: building the attributes per call (two strings
    /// copied, a vector) and then hashing them in each instrument was most
    /// of what metrics cost a call.
    attributes: RwLock<HashMap<String, MethodAttributes>>,
}

/// At most this many methods have cached attributes; records of further
/// names (a hook fed by hand) get theirs built per call.
const CACHED_METHODS: usize = 1024;

/// At most this many authentication domains are cached per method. A
/// server has a handful (its authenticators' names), so the bound keeps a
/// hook fed arbitrary domains by hand from growing without end.
const CACHED_DOMAINS: usize = 16;

/// One method's metric attributes and bound instruments, for each
/// authentication domain its calls came with.
struct MethodAttributes {
    protocol: String,
    method_type: MethodType,
    domains: Vec<DomainOutcomes>,
}

/// The attributes and instruments of one method's calls from one
/// authentication domain (`None`: calls without one), for each outcome.
struct DomainOutcomes {
    domain: Option<String>,
    ok: Outcome,
    error: Outcome,
}

/// The attributes of one method's calls with one outcome, and the
/// instruments bound to them.
struct Outcome {
    attributes: Vec<KeyValue>,
    /// Bound after the first call with this outcome: bound earlier, an
    /// outcome no call had would be exported as a series of zeros.
    bound: OnceLock<(BoundCounter<u64>, BoundHistogram<f64>)>,
}

impl Outcome {
    fn record(&self, metrics: &RequestMetrics, seconds: f64) {
        if let Some((requests, duration)) = self.bound.get() {
            requests.add(1);
            duration.record(seconds);
            return;
        }
        metrics.requests.add(1, &self.attributes);
        metrics.duration.record(seconds, &self.attributes);
        let _ = self.bound.set((
            metrics.requests.bind(&self.attributes),
            metrics.duration.bind(&self.attributes),
        ));
    }
}

impl MethodAttributes {
    fn new(record: &CallRecord) -> Self {
        Self {
            protocol: record.protocol.clone(),
            method_type: record.method_type,
            domains: vec![DomainOutcomes::new(record)],
        }
    }

    fn describes(&self, record: &CallRecord) -> bool {
        self.protocol == record.protocol && self.method_type == record.method_type
    }

    fn for_domain(&self, domain: Option<&str>) -> Option<&DomainOutcomes> {
        self.domains
            .iter()
            .find(|outcomes| outcomes.domain.as_deref() == domain)
    }
}

impl DomainOutcomes {
    fn new(record: &CallRecord) -> Self {
        let domain = call_domain(record).map(str::to_owned);
        let mut fixed = vec![
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", record.protocol.clone()),
            KeyValue::new("rpc.method", record.method.clone()),
            KeyValue::new("rpc.vgi_rpc.method_type", record.method_type.as_str()),
        ];
        if let Some(domain) = &domain {
            fixed.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain.clone()));
        }
        let outcome = |status: &'static str| {
            let mut attributes = fixed.clone();
            attributes.push(KeyValue::new("status", status));
            Outcome {
                attributes,
                bound: OnceLock::new(),
            }
        };
        Self {
            ok: outcome("ok"),
            error: outcome("error"),
            domain,
        }
    }

    fn for_status(&self, status: &CallStatus) -> &Outcome {
        match status {
            CallStatus::Ok => &self.ok,
            CallStatus::Error { .. } => &self.error,
        }
    }

    fn record(&self, metrics: &RequestMetrics, record: &CallRecord) {
        self.for_status(&record.status)
            .record(metrics, record.duration.as_secs_f64());
    }
}

/// Records a call whose attributes are not cached: measured with them
/// once, with no instruments bound that would be dropped right after.
fn record_uncached(metrics: &RequestMetrics, record: &CallRecord) {
    let outcomes = DomainOutcomes::new(record);
    let outcome = outcomes.for_status(&record.status);
    let seconds = record.duration.as_secs_f64();
    metrics.requests.add(1, &outcome.attributes);
    metrics.duration.record(seconds, &outcome.attributes);
}

/// The authentication domain a call's metrics carry: none when the call
/// came without one or with an empty one.
fn call_domain(record: &CallRecord) -> Option<&str> {
    record.auth.domain.as_deref().filter(|d| !d.is_empty())
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
}

impl DispatchHook for RequestMetrics {
    fn on_call(&self, record: &CallRecord) {
        let domain = call_domain(record);
        {
            let cached = self
                .attributes
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(outcomes) = cached
                .get(&record.method)
                .filter(|method| method.describes(record))
                .and_then(|method| method.for_domain(domain))
            {
                return outcomes.record(self, record);
            }
        }
        let mut cached = self
            .attributes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let room = cached.len() < CACHED_METHODS;
        let method = match cached.get_mut(&record.method) {
            Some(method) if method.describes(record) => method,
            // A record whose method another service (or method type) also
            // uses: its attributes differ, so they are not cached.
            Some(_) => return record_uncached(self, record),
            None if room => cached
                .entry(record.method.clone())
                .or_insert_with(|| MethodAttributes::new(record)),
            None => return record_uncached(self, record),
        };
        if method.for_domain(domain).is_none() {
            if method.domains.len() >= CACHED_DOMAINS {
                return record_uncached(self, record);
            }
            method.domains.push(DomainOutcomes::new(record));
        }
        if let Some(outcomes) = method.for_domain(domain) {
            outcomes.record(self, record);
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
