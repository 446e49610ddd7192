//! Hostile connections: stalled bodies, slowloris headers, a short body,
//! thousands of idle sockets.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{Attempt, MIB};
use crate::link::Link;
use crate::payloads;
use crate::raw;
use crate::worker::{Transport, Worker, mib};

/// The body-read timeout the worker gets for [`stalled_bodies`].
pub(super) const STALL_TIMEOUT_SECS: u64 = 10;

/// Connections that each begin a request whose body claims 15 MiB, send
/// part of it and stop: the worker may hold about what they sent, must
/// close them once the body-read timeout passes, and serves a valid client
/// meanwhile.
pub(super) fn stalled_bodies(attempt: &mut Attempt<'_>) -> Result<()> {
    let (connections, sent) = (40, 256 * 1024);
    let request = payloads::body_claim(15 << 20, sent);
    let mut stalled = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = attempt.worker.unix()?;
        stream.write_all(&request)?;
        stalled.push((stream, Instant::now()));
    }
    // Let the worker take in what was sent before measuring.
    thread::sleep(Duration::from_secs(2));
    let sent_total = (connections * request.len()) as u64;
    // The body as it arrives, its copy through the read buffer, and the
    // serving thread's own memory.
    let limit = attempt.baseline.resident + 3 * sent_total + connections as u64 * MIB;
    let held = attempt.check_peak(limit, "holding the stalled requests")?;
    let worker = &*attempt.worker;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (served, mut refused, closed_after) = thread::scope(|scope| {
        let caller = scope.spawn(|| {
            let (mut served, mut refused) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match valid_unix_call(worker) {
                    Ok(()) => served += 1,
                    Err(err) => refused.push(format!("a valid call failed: {err:#}")),
                }
                thread::sleep(Duration::from_millis(500));
            }
            (served, refused)
        });
        let closed_after: Vec<std::io::Result<Duration>> = stalled
            .into_iter()
            .map(|(mut stream, sent_at)| {
                stream.set_read_timeout(Some(Duration::from_secs(STALL_TIMEOUT_SECS + 20)))?;
                stream.read_to_end(&mut Vec::new())?;
                Ok(sent_at.elapsed())
            })
            .collect();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (served, refused) = caller
            .join()
            .unwrap_or_else(|_| (0, vec!["the valid caller panicked".into()]));
        (served, refused, closed_after)
    });
    let closed_after: Vec<Duration> = closed_after
        .into_iter()
        .filter_map(|closed| {
            closed
                .map_err(|err| refused.push(format!("a stalled connection stayed open: {err}")))
                .ok()
        })
        .collect();
    let timeout = Duration::from_secs(STALL_TIMEOUT_SECS);
    let earliest = closed_after.iter().min().copied().unwrap_or_default();
    let latest = closed_after.iter().max().copied().unwrap_or_default();
    attempt.check(closed_after.len() == connections, || {
        format!("{} of {connections} closed", closed_after.len())
    });
    attempt.check(earliest + Duration::from_secs(1) >= timeout, || {
        format!("closed after {earliest:?}, before the timeout")
    });
    attempt.check(latest <= timeout + Duration::from_secs(10), || {
        format!("closed only after {latest:?}")
    });
    attempt.check(refused.is_empty(), || refused.join("; "));
    attempt.answer = format!(
        "{:.1} MiB sent; RSS {:.0} MiB while stalled; closed after {:.1}-{:.1} s; \
         {served} valid calls served meanwhile",
        mib(sent_total),
        mib(held),
        earliest.as_secs_f64(),
        latest.as_secs_f64(),
    );
    Ok(())
}

fn valid_unix_call(worker: &Worker) -> Result<()> {
    let stream = worker.unix()?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let reader = std::io::BufReader::new(stream.try_clone()?);
    Link::Unix(stream, reader).echo("beside the stalled ones")
}

pub(super) fn slowloris(attempt: &mut Attempt<'_>) -> Result<()> {
    let (connections, seconds) = if attempt.settings.quick {
        (300, 10)
    } else {
        (1100, 40)
    };
    let url = attempt.worker.url()?;
    let addr = url.trim_start_matches("http://").to_owned();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (served, failed, reconnects) = thread::scope(|scope| {
        let attacker = scope.spawn(|| dribble(&addr, connections, &stop));
        // Give the attacker time to take its connections first.
        thread::sleep(Duration::from_secs(3));
        let mut served = 0;
        let mut failed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            let outcome = TcpStream::connect(&addr)
                .map_err(anyhow::Error::from)
                .and_then(|stream| {
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    Ok(stream)
                })
                .and_then(|stream| Link::Http(stream).echo("valid client"));
            match outcome {
                Ok(()) => served += 1,
                Err(err) => failed.push(format!("{err:#}")),
            }
            thread::sleep(Duration::from_millis(500));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let reconnects = attacker.join().unwrap_or(0);
        (served, failed, reconnects)
    });
    attempt.answer = format!(
        "{served} valid calls served, {} failed; attacker reconnected {reconnects} times",
        failed.len()
    );
    attempt.check(failed.is_empty(), || {
        format!("valid clients refused: {}", failed.join("; "))
    });
    attempt.check_peak(300 * MIB, "under the attack")?;
    Ok(())
}

/// Keeps `count` connections sending one header byte each every 2 s,
/// reconnecting any the worker closes, until `stop`; returns how many
/// times it had to reconnect.
fn dribble(addr: &str, count: usize, stop: &std::sync::atomic::AtomicBool) -> usize {
    let head = b"POST /echo_string HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
    let mut streams: Vec<(Option<TcpStream>, usize)> = (0..count).map(|_| (None, 0)).collect();
    let mut reconnects: usize = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for (slot, sent) in &mut streams {
            if slot.is_none() {
                *slot = TcpStream::connect_timeout(
                    &addr.parse().expect("a socket address"),
                    Duration::from_millis(200),
                )
                .ok();
                *sent = 0;
                reconnects += 1;
            }
            if let Some(stream) = slot {
                let byte = head.get(*sent).copied().unwrap_or(b'a');
                if stream.write_all(&[byte]).is_err() {
                    *slot = None;
                } else {
                    *sent += 1;
                }
            }
        }
        thread::sleep(Duration::from_secs(2));
    }
    reconnects.saturating_sub(count)
}

pub(super) fn partial_body(attempt: &mut Attempt<'_>) -> Result<()> {
    let mut stream = attempt.worker.http()?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.write_all(&raw::post_head("/echo_string", 1000, &[]))?;
    stream.write_all(&[0u8; 10])?;
    let started = Instant::now();
    let outcome = raw::read_response(&mut stream);
    let waited = started.elapsed();
    attempt.answer = match &outcome {
        Ok(http) => format!(
            "{} after {:.1} s: {}",
            http.status,
            waited.as_secs_f64(),
            http.text()
        ),
        Err(err) => format!("closed after {:.1} s ({err:#})", waited.as_secs_f64()),
    };
    let timed_out = waited < Duration::from_secs(110);
    attempt.check(timed_out, || "the request was held past 110 s".into());
    Ok(())
}

pub(super) fn idle_connections(attempt: &mut Attempt<'_>) -> Result<()> {
    let count = if attempt.settings.quick { 500 } else { 2000 };
    raise_fd_limit(count as u64 + 256)?;
    let mut idle = Vec::with_capacity(count);
    for _ in 0..count {
        idle.push(attempt.worker.unix()?);
    }
    // Let the worker accept them all before measuring.
    thread::sleep(Duration::from_secs(2));
    let served = Link::open(attempt.worker, Transport::Unix).and_then(|mut link| {
        if let Link::Unix(stream, _) = &link {
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        }
        link.echo("beside the idle ones")
    });
    attempt.check(served.is_ok(), || {
        format!(
            "a valid client was not served: {:#}",
            served.as_ref().unwrap_err()
        )
    });
    let held = attempt.worker.memory()?.resident;
    attempt.check_peak(300 * MIB, "holding the connections")?;
    drop(idle);
    let settled = attempt.baseline.resident + attempt.baseline.resident / 10 + 16 * MIB;
    let after = attempt.check_settles(settled, "after they closed")?;
    attempt.answer = format!(
        "valid call served: {}; RSS {:.0} MiB with {count} open, {:.0} MiB after",
        served.is_ok(),
        mib(held),
        mib(after)
    );
    Ok(())
}

fn raise_fd_limit(at_least: u64) -> Result<()> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < at_least) {
        limit.current = Some(limit.maximum.map_or(at_least, |max| max.min(at_least)));
        setrlimit(Resource::Nofile, limit).context("raising the open-file limit")?;
    }
    Ok(())
}
