//! Running the suite on one server over one transport, the verdicts and
//! reports, and the divergences between servers and transports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vgirpc::client::{Client, ShmSegment, Transport};

use super::case::{Body, Run, TestCase};
use super::cases::tests;
use super::checks::Failure;
use super::connection::{Connect, Connection, Ctx, Interrupt, connection, lock};
use super::servers::{SHM_SEGMENT_BYTES, Server, TransportKind, spawn, start_http, start_unix};

/// How one test went on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check held; the observation is what was seen.
    Passed(String),
    /// A check failed, or the call did.
    Failed(String),
    /// Not applicable to this transport.
    Skipped(String),
}

/// One test's result on one server.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `category.name`, as in the reference suite.
    pub test: String,
    /// What happened.
    pub verdict: Verdict,
    /// Wall time.
    pub duration: Duration,
}

/// Every outcome on one server over one transport.
#[derive(Debug, Clone)]
pub struct Report {
    /// The server.
    pub server: Server,
    /// The transport.
    pub transport: TransportKind,
    /// One outcome per selected test, in suite order.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// `server/transport`, for reports.
    pub fn label(&self) -> String {
        format!("{}/{}", self.server.name, self.transport.name())
    }

    /// Tests that passed.
    pub fn passed(&self) -> usize {
        self.count(|s| matches!(s, Verdict::Passed(_)))
    }

    /// Tests that failed.
    pub fn failed(&self) -> usize {
        self.count(|s| matches!(s, Verdict::Failed(_)))
    }

    /// Tests skipped as not applicable.
    pub fn skipped(&self) -> usize {
        self.count(|s| matches!(s, Verdict::Skipped(_)))
    }

    fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(&o.verdict)).count()
    }
}

/// A test that passed everywhere but saw different things on different
/// servers or transports of one family.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// `category.name`.
    pub test: String,
    /// `server/transport` and its observation.
    pub observations: Vec<(String, String)>,
}

/// Names of every test, in suite order.
pub fn test_names() -> Vec<String> {
    tests::<vgirpc::client::SubprocessTransport>()
        .iter()
        .map(TestCase::full_name)
        .collect()
}

/// Runs the tests whose name contains `filter` (all without one) against
/// `server` over `transport`, each within `timeout`. A test that breaks
/// its connection gets a new one, so later tests start clean; a server
/// that cannot be started fails every test with the reason.
pub fn run(
    server: &Server,
    transport: TransportKind,
    filter: Option<&str>,
    timeout: Duration,
) -> Report {
    let outcomes = match transport {
        TransportKind::Pipe => run_with(transport, filter, timeout, &|| {
            let client = spawn(server)?;
            let killer = client.transport().kill_handle();
            Ok(connection(client, Arc::new(move || killer.kill())))
        }),
        TransportKind::Shm => run_with(transport, filter, timeout, &|| {
            let segment = ShmSegment::create(SHM_SEGMENT_BYTES)?;
            let client = spawn(server)?;
            let killer = client.transport().kill_handle();
            Ok(connection(
                client.with_shm(segment),
                Arc::new(move || killer.kill()),
            ))
        }),
        TransportKind::Unix => match start_unix(server) {
            Ok((_listener, socket)) => run_with(transport, filter, timeout, &|| {
                let client = Client::connect_unix(&socket)?;
                let handle = client
                    .transport()
                    .shutdown_handle()
                    .map_err(Failure::from)?;
                Ok(connection(client, Arc::new(move || handle.shutdown())))
            }),
            Err(reason) => unstartable(filter, &reason),
        },
        TransportKind::Http | TransportKind::H2c | TransportKind::Https => {
            match start_http(server, transport) {
                Ok((_listener, url, options)) => run_with(transport, filter, timeout, &|| {
                    // The deadline is the request timeout: there is no
                    // single connection to cut from outside.
                    let client = Client::connect_http_with(&url, options.clone().timeout(timeout))?;
                    Ok(connection(client, Arc::new(|| {})))
                }),
                Err(reason) => unstartable(filter, &reason),
            }
        }
    };
    Report {
        server: server.clone(),
        transport,
        outcomes,
    }
}

/// Every selected test failed, for a server that did not start.
fn unstartable(filter: Option<&str>, reason: &str) -> Vec<Outcome> {
    test_names()
        .into_iter()
        .filter(|test| filter.is_none_or(|f| test.contains(f)))
        .map(|test| Outcome {
            test,
            verdict: Verdict::Failed(format!("the server did not start: {reason}")),
            duration: Duration::ZERO,
        })
        .collect()
}

fn run_with<T: Transport>(
    transport: TransportKind,
    filter: Option<&str>,
    timeout: Duration,
    connect: Connect<'_, T>,
) -> Vec<Outcome> {
    let mut connection: Option<Connection<T>> = None;
    let mut outcomes = Vec::new();
    for case in tests::<T>() {
        let test = case.full_name();
        if filter.is_some_and(|f| !test.contains(f)) {
            continue;
        }
        let start = Instant::now();
        let verdict = match case.body {
            Body::Skip(reason) => Verdict::Skipped(reason.to_owned()),
            Body::Run(body, not_on) => match not_on(transport) {
                Some(reason) => Verdict::Skipped(reason.to_owned()),
                None => run_one(body, &mut connection, timeout, connect),
            },
        };
        outcomes.push(Outcome {
            test,
            verdict,
            duration: start.elapsed(),
        });
    }
    if let Some(open) = connection {
        // The suite's verdicts are in; a connection that fails to close
        // cleanly does not change them.
        let _ = open.client.into_dynamic().close();
    }
    outcomes
}

/// Runs one test body on the open connection (or a new one), keeping the
/// connection for the next test while it is sound.
fn run_one<T: Transport>(
    body: Run<T>,
    connection: &mut Option<Connection<T>>,
    timeout: Duration,
    connect: Connect<'_, T>,
) -> Verdict {
    let result = match connection.take() {
        Some(open) => Ok(open),
        None => connect(),
    }
    .and_then(|mut open| {
        lock(&open.logs).clear();
        let watchdog = Watchdog::arm(open.interrupt.clone(), timeout);
        let mut ctx = Ctx {
            client: &mut open.client,
            logs: &open.logs,
            connect,
            fresh: Vec::new(),
        };
        let result = body(&mut ctx);
        let fresh = std::mem::take(&mut ctx.fresh);
        let timed_out = watchdog.disarm();
        for interrupt in fresh {
            interrupt();
        }
        let result = match result {
            _ if timed_out => Err(Failure::lost(format!("timed out after {timeout:?}"))),
            other => other,
        };
        // Keep the connection only while it is sound.
        if !result.as_ref().is_err_and(|f| f.connection_lost) {
            *connection = Some(open);
        }
        result
    });
    match result {
        Ok(observation) => Verdict::Passed(observation),
        Err(failure) => Verdict::Failed(failure.message),
    }
}

/// Tests that passed on every server and transport of one family but
/// observed different things.
pub fn divergences(reports: &[Report]) -> Vec<Divergence> {
    let mut by_test: BTreeMap<(&str, &str), Vec<(String, String)>> = BTreeMap::new();
    let mut order = Vec::new();
    for report in reports {
        for outcome in &report.outcomes {
            if let Verdict::Passed(observation) = &outcome.verdict {
                let key = (report.transport.family(), outcome.test.as_str());
                let entry = by_test.entry(key).or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                });
                entry.push((report.label(), observation.clone()));
            }
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let observations = by_test.remove(&key)?;
            let distinct: BTreeSet<&str> = observations.iter().map(|(_, o)| o.as_str()).collect();
            (distinct.len() > 1).then(|| Divergence {
                test: key.1.to_owned(),
                observations,
            })
        })
        .collect()
}

/// Interrupts the connection if the test is still running at the deadline,
/// which turns a hang into a connection error the test reports.
struct Watchdog {
    done: mpsc::Sender<()>,
    fired: mpsc::Receiver<bool>,
}

impl Watchdog {
    fn arm(interrupt: Interrupt, timeout: Duration) -> Self {
        let (done, done_rx) = mpsc::channel::<()>();
        let (fired_tx, fired) = mpsc::channel();
        std::thread::spawn(move || {
            let fire = matches!(
                done_rx.recv_timeout(timeout),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            if fire {
                interrupt();
            }
            let _ = fired_tx.send(fire);
        });
        Self { done, fired }
    }

    /// Stops the watchdog; whether it had fired.
    fn disarm(self) -> bool {
        let _ = self.done.send(());
        self.fired.recv().unwrap_or(false)
    }
}
