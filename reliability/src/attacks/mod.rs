//! The attack matrix: each finding of the hostile-input review, replayed
//! against a fresh worker on every transport it applies to, checking the
//! answer, the worker's memory, and that the next valid request succeeds.

mod bodies;
mod connections;
mod http2;
mod messages;

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::link::Link;
use crate::worker::{Launch, Memory, Transport, Worker, mib};
use bodies::{body_claim, large_body, zstd_bombs};
use connections::{STALL_TIMEOUT_SECS, idle_connections, partial_body, slowloris, stalled_bodies};
use http2::{rapid_reset, stalled_streams};
use messages::{
    big_schemas, big_schemas_compressed, dictionary_after_batch, huge_method_name,
    wrong_exchange_type,
};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// What every run may tune.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The worker's decompressed-size cap for zstd request bodies.
    pub(crate) zstd_cap: u64,
    /// Shorter attacks (fewer connections, shorter waits) for CI.
    pub(crate) quick: bool,
}

/// One replayed finding.
pub(crate) struct Attack {
    pub(crate) name: &'static str,
    /// The finding's number in the hostile-input review.
    pub(crate) finding: u8,
    pub(crate) transports: &'static [Transport],
    /// Adjusts how the worker is started (limits, flags).
    tune: fn(&mut Launch),
    run: fn(&mut Attempt<'_>) -> Result<()>,
}

const ALL: &[Transport] = &[Transport::Pipe, Transport::Unix, Transport::Http];
const HTTP: &[Transport] = &[Transport::Http];
const UNIX: &[Transport] = &[Transport::Unix];

fn as_launched(_: &mut Launch) {}

/// Every attack, in finding order.
pub(crate) const ATTACKS: &[Attack] = &[
    Attack {
        name: "exchange input of the wrong type",
        finding: 1,
        transports: ALL,
        tune: as_launched,
        run: wrong_exchange_type,
    },
    Attack {
        name: "20 schemas with 40 MiB of metadata",
        finding: 2,
        transports: ALL,
        tune: as_launched,
        run: big_schemas,
    },
    Attack {
        name: "20 schemas with 40 MiB of metadata, zstd",
        finding: 2,
        transports: HTTP,
        tune: as_launched,
        run: big_schemas_compressed,
    },
    Attack {
        name: "body length of 2 GiB declared, 300 bytes sent (3 GiB address space)",
        finding: 3,
        transports: ALL,
        tune: |launch| launch.address_space = Some(3 * GIB),
        run: body_claim,
    },
    Attack {
        name: "40 requests claiming 15 MiB bodies, stalled after 256 KiB (body-read timeout 10 s)",
        finding: 3,
        transports: UNIX,
        tune: |launch| {
            launch
                .args
                .extend(["--body-read-timeout".into(), STALL_TIMEOUT_SECS.to_string()]);
        },
        run: stalled_bodies,
    },
    Attack {
        name: "zstd bomb expanding to 4 GiB, alone and four at once",
        finding: 4,
        transports: HTTP,
        tune: as_launched,
        run: zstd_bombs,
    },
    Attack {
        name: "1 GiB request body",
        finding: 5,
        transports: HTTP,
        tune: as_launched,
        run: large_body,
    },
    Attack {
        name: "1,100 slowloris connections (fd limit 1,024)",
        finding: 6,
        transports: HTTP,
        tune: |launch| launch.nofile = Some(1024),
        run: slowloris,
    },
    Attack {
        name: "Content-Length 1000 with 10 bytes sent",
        finding: 6,
        transports: HTTP,
        tune: as_launched,
        run: partial_body,
    },
    Attack {
        name: "2,000 idle connections",
        finding: 7,
        transports: UNIX,
        tune: |launch| launch.nofile = Some(4096),
        run: idle_connections,
    },
    Attack {
        name: "dictionary batch after the record batch",
        finding: 9,
        transports: ALL,
        tune: as_launched,
        run: dictionary_after_batch,
    },
    Attack {
        name: "16 MiB method name",
        finding: 10,
        transports: ALL,
        tune: as_launched,
        run: huge_method_name,
    },
    Attack {
        name: "10,000 HTTP/2 streams opened and cancelled at once (rapid reset)",
        finding: 11,
        transports: HTTP,
        tune: as_launched,
        run: rapid_reset,
    },
    Attack {
        name: "64 HTTP/2 streams claiming 15 MiB bodies, stalled after 256 KiB (body-read timeout 10 s)",
        finding: 11,
        transports: HTTP,
        tune: |launch| {
            launch.args.extend([
                "--body-read-timeout".into(),
                http2::STALL_TIMEOUT_SECS.to_string(),
            ]);
        },
        run: stalled_streams,
    },
];

/// One attack on one transport, as it runs.
pub(crate) struct Attempt<'w> {
    worker: &'w mut Worker,
    transport: Transport,
    link: Link,
    settings: &'w Settings,
    /// Memory after warming up, before the attack.
    baseline: Memory,
    /// What the worker answered, for the report.
    answer: String,
    failures: Vec<String>,
    /// The attack leaves the pipe's byte stream unusable, as any framing
    /// error must: the worker is then expected to exit cleanly.
    ends_connection: bool,
}

impl Attempt<'_> {
    fn check(&mut self, passed: bool, what: impl FnOnce() -> String) {
        if !passed {
            self.failures.push(what());
        }
    }

    /// Fails the attempt if the peak since the attack started passed `limit`.
    fn check_peak(&mut self, limit: u64, what: &str) -> Result<u64> {
        let peak = self.worker.memory()?.peak;
        self.check(peak <= limit, || {
            format!(
                "{what}: peak RSS {:.0} MiB over the limit of {:.0} MiB",
                mib(peak),
                mib(limit)
            )
        });
        Ok(peak)
    }

    /// Waits up to 15 s for resident memory to come back within `limit`.
    fn check_settles(&mut self, limit: u64, what: &str) -> Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let resident = self.worker.memory()?.resident;
            if resident <= limit || Instant::now() >= deadline {
                self.check(resident <= limit, || {
                    format!(
                        "{what}: RSS stayed at {:.0} MiB, over {:.0} MiB",
                        mib(resident),
                        mib(limit)
                    )
                });
                return Ok(resident);
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    fn expect_error(&mut self, reply: &crate::link::Reply, error_type: &str, contains: &str) {
        self.answer = reply.describe();
        let matched = reply
            .error()
            .is_some_and(|(kind, message)| kind == error_type && message.contains(contains));
        self.check(matched, || {
            format!("expected {error_type} mentioning {contains:?}")
        });
    }
}

/// The outcome of one attack on one transport.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) attack: &'static str,
    pub(crate) finding: u8,
    pub(crate) answer: String,
    pub(crate) baseline: u64,
    pub(crate) peak: u64,
    pub(crate) after: u64,
    pub(crate) failures: Vec<String>,
}

/// Runs `attack` on `transport` against a fresh worker.
pub(crate) fn run(
    attack: &Attack,
    transport: Transport,
    launch: &Launch,
    settings: &Settings,
) -> Verdict {
    let mut launch = launch.clone();
    launch.transport = transport;
    (attack.tune)(&mut launch);
    let mut verdict = Verdict {
        attack: attack.name,
        finding: attack.finding,
        answer: String::new(),
        baseline: 0,
        peak: 0,
        after: 0,
        failures: Vec::new(),
    };
    if let Err(err) = attempt(attack, &launch, settings, &mut verdict) {
        verdict.failures.push(format!("{err:#}"));
    }
    verdict
}

fn attempt(
    attack: &Attack,
    launch: &Launch,
    settings: &Settings,
    verdict: &mut Verdict,
) -> Result<()> {
    let scratch = std::env::temp_dir().join(format!("vgirpc-reliability-{}", std::process::id()));
    let mut worker = Worker::start(launch, &scratch)?;
    let mut link = Link::open(&mut worker, launch.transport)?;
    link.echo("warm up").context("warming up")?;
    let baseline = worker.memory()?;
    worker.reset_peak()?;
    let mut attempt = Attempt {
        worker: &mut worker,
        transport: launch.transport,
        link,
        settings,
        baseline,
        answer: String::new(),
        failures: Vec::new(),
        ends_connection: false,
    };
    let outcome = (attack.run)(&mut attempt);
    let Attempt {
        link,
        answer,
        mut failures,
        ends_connection,
        ..
    } = attempt;
    if let Err(err) = outcome {
        failures.push(format!("{err:#}"));
    }
    verdict.answer = answer;
    verdict.failures = failures;
    verdict.baseline = baseline.resident;
    // A pipe worker whose byte stream broke may have exited already, and
    // an exited process has no memory to read.
    if let Ok(memory) = worker.memory() {
        verdict.peak = memory.peak;
        verdict.after = memory.resident;
    }
    next_request_succeeds(&mut worker, launch.transport, link, ends_connection)
        .context("after the attack")
}

/// The worker keeps serving: a valid call on the same pipe, or a new
/// connection on a socket. A pipe whose byte stream the attack broke must
/// instead end with a clean exit, not a crash.
fn next_request_succeeds(
    worker: &mut Worker,
    transport: Transport,
    mut link: Link,
    ends_connection: bool,
) -> Result<()> {
    match transport {
        Transport::Pipe if ends_connection => {
            drop(link);
            let status = worker
                .wait_exit(Duration::from_secs(10))?
                .context("the worker did not exit after its byte stream broke")?;
            anyhow::ensure!(
                status.code().is_some(),
                "the worker died by a signal: {status}"
            );
            Ok(())
        }
        Transport::Pipe => link.echo("after the attack"),
        Transport::Unix | Transport::Http => {
            anyhow::ensure!(worker.is_running()?, "the worker is gone");
            Link::open(worker, transport)?.echo("after the attack")
        }
    }
}
