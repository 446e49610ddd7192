//! Load and soak: many connections calling at once with every reply
//! checked, memory before and after, then SIGTERM in the middle of the
//! load with every request the worker received answered.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::Result;

use crate::link::Link;
use crate::raw;
use crate::worker::{Launch, Transport, Worker, mib};

/// How long and how wide the load is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) connections: usize,
    pub(crate) soak: Duration,
}

/// What a soak on one transport showed.
#[derive(Debug)]
pub(crate) struct SoakReport {
    pub(crate) calls: u64,
    pub(crate) wrong_replies: u64,
    /// Resident memory once the load was steady, and after it stopped.
    pub(crate) start_rss: u64,
    pub(crate) end_rss: u64,
    /// Calls answered after SIGTERM was sent.
    pub(crate) answered_after_signal: u64,
    /// Requests written whole whose connection then ended without an
    /// answer, or with part of one.
    pub(crate) lost: u64,
    /// Connections refused after the signal (never received; not lost).
    pub(crate) refused: u64,
    pub(crate) exit: String,
    pub(crate) failures: Vec<String>,
}

/// Memory may grow this much over a soak (allocator caches, thread
/// stacks) before it counts as a leak.
const RSS_MARGIN: f64 = 0.25;
const RSS_SLACK: u64 = 16 << 20;

pub(crate) fn run(launch: &Launch, transport: Transport, load: Load) -> Result<SoakReport> {
    let mut launch = launch.clone();
    launch.transport = transport;
    launch.nofile = Some(4096);
    let scratch = std::env::temp_dir().join(format!("vgirpc-soak-{}", std::process::id()));
    let worker = Worker::start(&launch, &scratch)?;
    Link::open_socket(&worker, transport)?.echo("warm up")?;

    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let wrong = AtomicU64::new(0);
    let start_rss = thread::scope(|scope| -> Result<u64> {
        for id in 0..load.connections {
            let (worker, stop, calls, wrong) = (&worker, &stop, &calls, &wrong);
            scope.spawn(move || {
                let mut client = Caller::new(worker, transport, id);
                while !stop.load(Ordering::Relaxed) {
                    match client.call() {
                        Outcome::Answered => calls.fetch_add(1, Ordering::Relaxed),
                        _ => wrong.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
        // Steady once the worker's thread pool and caches have grown to
        // the load; growth after that is what a leak looks like.
        let warm = load.soak / 2;
        thread::sleep(warm);
        let start = worker.memory()?.resident;
        thread::sleep(load.soak - warm);
        stop.store(true, Ordering::SeqCst);
        Ok(start)
    })?;
    thread::sleep(Duration::from_secs(2));
    let end_rss = worker.memory()?.resident;

    let mut report = SoakReport {
        calls: calls.load(Ordering::SeqCst),
        wrong_replies: wrong.load(Ordering::SeqCst),
        start_rss,
        end_rss,
        answered_after_signal: 0,
        lost: 0,
        refused: 0,
        exit: String::new(),
        failures: Vec::new(),
    };
    if report.wrong_replies > 0 {
        report
            .failures
            .push(format!("{} calls failed under load", report.wrong_replies));
    }
    let allowed = start_rss + (start_rss as f64 * RSS_MARGIN) as u64 + RSS_SLACK;
    if end_rss > allowed {
        report.failures.push(format!(
            "RSS grew from {:.0} MiB to {:.0} MiB over the soak",
            mib(start_rss),
            mib(end_rss)
        ));
    }
    terminate_under_load(worker, transport, load, &mut report)?;
    Ok(report)
}

/// Loads the worker again, sends SIGTERM, and lets every caller run on
/// until the worker turns it away.
fn terminate_under_load(
    mut worker: Worker,
    transport: Transport,
    load: Load,
    report: &mut SoakReport,
) -> Result<()> {
    let signalled = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let lost = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    thread::scope(|scope| -> Result<()> {
        for id in 0..load.connections {
            let (worker, signalled, answered, lost, refused) =
                (&worker, &signalled, &answered, &lost, &refused);
            scope.spawn(move || {
                let mut client = Caller::new(worker, transport, id);
                loop {
                    let outcome = client.call();
                    let after_signal = signalled.load(Ordering::SeqCst);
                    match outcome {
                        Outcome::Answered if after_signal => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Answered => {}
                        Outcome::Refused => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Outcome::Lost | Outcome::Wrong => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
        thread::sleep(Duration::from_secs(2));
        worker.terminate()?;
        signalled.store(true, Ordering::SeqCst);
        Ok(())
    })?;
    report.answered_after_signal = answered.load(Ordering::SeqCst);
    report.lost = lost.load(Ordering::SeqCst);
    report.refused = refused.load(Ordering::SeqCst);
    let status = worker.wait_exit(Duration::from_secs(40))?;
    report.exit = status.map_or_else(|| "still running".into(), |s| s.to_string());
    if report.lost > 0 {
        report.failures.push(format!(
            "{} requests received during shutdown were not answered",
            report.lost
        ));
    }
    if !status.is_some_and(|s| s.success()) {
        report
            .failures
            .push(format!("the worker ended as {}", report.exit));
    }
    Ok(())
}

enum Outcome {
    Answered,
    /// Answered with something other than the echo.
    Wrong,
    /// The request went out whole and the connection ended without its
    /// answer.
    Lost,
    /// No connection could be opened, or the worker closed an idle one
    /// before the request was written.
    Refused,
}

/// One load-generating connection; reconnects when the worker closes it
/// between calls.
struct Caller<'w> {
    worker: &'w Worker,
    transport: Transport,
    id: usize,
    sequence: u64,
    link: Option<Link>,
}

impl<'w> Caller<'w> {
    fn new(worker: &'w Worker, transport: Transport, id: usize) -> Self {
        Self {
            worker,
            transport,
            id,
            sequence: 0,
            link: None,
        }
    }

    fn call(&mut self) -> Outcome {
        self.sequence += 1;
        let text = format!("caller {} call {}", self.id, self.sequence);
        let link = match &mut self.link {
            Some(link) => link,
            None => match Link::open_socket(self.worker, self.transport) {
                Ok(link) => self.link.insert(link),
                Err(_) => return Outcome::Refused,
            },
        };
        let params = crate::link::strings(vec![text.as_str()]);
        let body = raw::call("echo_string", &params);
        let reply = link.send("echo_string", &[], &body);
        let close_after = reply
            .http
            .as_ref()
            .and_then(|http| http.header("connection"))
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let outcome = match &reply.answer {
            Ok(answer) if echoed(answer, &text) => Outcome::Answered,
            Ok(_) => Outcome::Wrong,
            Err(err) if written_whole(err) => Outcome::Lost,
            Err(_) => Outcome::Refused,
        };
        if close_after || !matches!(outcome, Outcome::Answered) {
            self.link = None;
        }
        outcome
    }
}

fn echoed(answer: &[vgirpc_wire::ipc::IpcBatch], text: &str) -> bool {
    answer.iter().any(|batch| {
        batch.batch.num_rows() == 1
            && batch
                .batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .is_some_and(|column| column.value(0) == text)
    })
}

/// Whether a failed call had written its whole request: a failure to
/// write means the worker never took the request.
fn written_whole(err: &anyhow::Error) -> bool {
    !format!("{err:#}").contains("writing the request")
}

impl Link {
    /// A new connection on a socket transport.
    pub(crate) fn open_socket(worker: &Worker, transport: Transport) -> Result<Self> {
        let link = match transport {
            Transport::Unix => {
                let stream = worker.unix()?;
                stream.set_read_timeout(Some(crate::link::ANSWER_TIMEOUT))?;
                let reader = std::io::BufReader::new(stream.try_clone()?);
                Link::Unix(stream, reader)
            }
            Transport::Http => {
                let stream: TcpStream = worker.http()?;
                stream.set_read_timeout(Some(crate::link::ANSWER_TIMEOUT))?;
                Link::Http(stream)
            }
            Transport::Pipe => anyhow::bail!("the pipe has one connection only"),
        };
        Ok(link)
    }
}
