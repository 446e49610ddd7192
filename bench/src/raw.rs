//! The machine's own limits, measured in the same run as the servers: a
//! small-message ping-pong and one-way bandwidth over a bare pipe, a bare
//! Unix socket and a bare loopback TCP connection, between this process
//! and a copy of it (`raw-peer` mode) doing nothing but echoing or
//! discarding bytes.
//!
//! They bound what any RPC implementation can reach on the transport, so
//! our server's latency and throughput are judged against them. The echo
//! peer's own CPU time per round trip — one read and one write — is the
//! least CPU any server can spend on a small call over that link.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::procstat::on_cpu_ns;
use crate::servers::TransportKind;
use crate::stats::{median, percentile};

/// Bytes per ping-pong message: about the size of a small unary request
/// and of its answer (a void_noop request is 392 bytes, its answer 240).
pub(crate) const PING_BYTES: usize = 320;

/// Kernel buffer of each bare pipe: what `vgirpc-pipe` asks for on its
/// stdin and stdout (Linux's limit for unprivileged processes).
const PIPE_BUFFER_BYTES: usize = 1 << 20;

/// Chunk written and read per system call when measuring bandwidth.
const CHUNK: usize = 1 << 20;

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawPlan {
    /// Round trips per ping-pong run.
    pub(crate) round_trips: usize,
    /// Bytes per bandwidth run.
    pub(crate) bulk_bytes: usize,
    /// Runs of each; the median is reported.
    pub(crate) runs: usize,
}

/// A bare connection between two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Pipe,
    Unix,
    /// TCP on 127.0.0.1, without Nagle's delay (as HTTP servers set it).
    Tcp,
}

impl Link {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Link::Pipe => "pipe",
            Link::Unix => "unix",
            Link::Tcp => "tcp",
        }
    }

    /// The bare link `transport`'s requests travel: shm's go through the
    /// pipe (only batches take the shared memory), HTTP's through TCP.
    pub(crate) fn under(transport: TransportKind) -> Link {
        match transport {
            TransportKind::Pipe | TransportKind::Shm => Link::Pipe,
            TransportKind::Unix | TransportKind::UnixAsync => Link::Unix,
            TransportKind::Http => Link::Tcp,
        }
    }
}

/// The limits of one link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) link: Link,
    /// Median over runs of each run's median round trip.
    pub(crate) ping_pong_p50_us: f64,
    /// Median over runs of each run's 99th percentile round trip.
    pub(crate) ping_pong_p99_us: f64,
    /// Median over runs of the echo peer's CPU time per round trip, in
    /// microseconds; NaN where `/proc/<pid>/schedstat` could not be read.
    pub(crate) echo_cpu_us: f64,
    /// Median over runs of one-way throughput, in 10^6 bytes per second.
    pub(crate) bandwidth_mb_s: f64,
}

impl Limits {
    pub(crate) fn to_json(self) -> Value {
        let finite = |v: f64| v.is_finite().then_some(v);
        json!({
            "link": self.link.name(),
            "ping_pong_bytes": PING_BYTES,
            "ping_pong_p50_us": self.ping_pong_p50_us,
            "ping_pong_p99_us": self.ping_pong_p99_us,
            "echo_cpu_us_per_round_trip": finite(self.echo_cpu_us),
            "bandwidth_mb_s": self.bandwidth_mb_s,
        })
    }
}

/// Measures the limits of the link under `transport`, or `None` for shm,
/// whose link (the pipe) is measured with the pipe transport.
pub(crate) fn measure(
    transport: TransportKind,
    plan: RawPlan,
    scratch: &Path,
) -> Result<Option<Limits>> {
    if transport == TransportKind::Shm {
        return Ok(None);
    }
    let link = Link::under(transport);
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut echo_cpu = Vec::new();
    let mut bandwidth = Vec::new();
    for run in 0..plan.runs {
        let mut peer = Peer::start(link, scratch, run, &["echo", &PING_BYTES.to_string()])?;
        let (latencies, cpu) = ping_pong(&mut peer, plan.round_trips)?;
        peer.finish()?;
        p50.push(percentile(&latencies, 50.0).unwrap_or(f64::NAN));
        p99.push(percentile(&latencies, 99.0).unwrap_or(f64::NAN));
        echo_cpu.extend(cpu);

        let mut peer = Peer::start(link, scratch, run, &["sink", &plan.bulk_bytes.to_string()])?;
        let elapsed = push_bytes(&mut peer, plan.bulk_bytes)?;
        peer.finish()?;
        bandwidth.push(plan.bulk_bytes as f64 / elapsed.as_secs_f64() / 1e6);
    }
    Ok(Some(Limits {
        link,
        ping_pong_p50_us: median(&p50).unwrap_or(f64::NAN),
        ping_pong_p99_us: median(&p99).unwrap_or(f64::NAN),
        echo_cpu_us: median(&echo_cpu).unwrap_or(f64::NAN),
        bandwidth_mb_s: median(&bandwidth).unwrap_or(f64::NAN),
    }))
}

/// Round-trip times in microseconds, after a short warm-up, and the echo
/// peer's CPU time per round trip when it could be read.
///
/// The peer's CPU comes from `/proc/<pid>/schedstat` (nanoseconds, of its
/// only thread) rather than `/proc/<pid>/stat`, whose 10 ms ticks would
/// swallow a few microseconds per round trip. When the last reply has
/// arrived the peer is blocked in its next read, so the reading after the
/// loop holds all of the loop's work.
fn ping_pong(peer: &mut Peer, round_trips: usize) -> Result<(Vec<f64>, Option<f64>)> {
    let mut message = vec![0x5Au8; PING_BYTES];
    for _ in 0..round_trips.min(100) {
        peer.writer.write_all(&message)?;
        peer.reader.read_exact(&mut message)?;
    }
    let pid = peer.child.id();
    let cpu_before = on_cpu_ns(pid).ok();
    let mut latencies = Vec::with_capacity(round_trips);
    for _ in 0..round_trips {
        let start = Instant::now();
        peer.writer.write_all(&message)?;
        peer.reader.read_exact(&mut message)?;
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let cpu_after = on_cpu_ns(pid).ok();
    let cpu_us = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| after.saturating_sub(before) as f64 / 1e3 / round_trips as f64);
    Ok((latencies, cpu_us))
}

/// Time to write `total` bytes and hear that the peer has read them all.
fn push_bytes(peer: &mut Peer, total: usize) -> Result<Duration> {
    let chunk = vec![0xA5u8; CHUNK];
    let start = Instant::now();
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK);
        peer.writer.write_all(&chunk[..n])?;
        left -= n;
    }
    let mut ack = [0u8; 1];
    peer.reader
        .read_exact(&mut ack)
        .context("waiting for the sink's ack")?;
    Ok(start.elapsed())
}

/// A running copy of this program in `raw-peer` mode, connected and ready.
struct Peer {
    child: Child,
    reader: Box<dyn Read>,
    writer: Box<dyn Write>,
    socket: Option<PathBuf>,
}

impl Peer {
    fn start(link: Link, scratch: &Path, run: usize, args: &[&str]) -> Result<Self> {
        let exe = std::env::current_exe().context("locating this program")?;
        let mut command = Command::new(exe);
        command.arg("raw-peer").args(args).stderr(Stdio::inherit());
        let mut peer = match link {
            Link::Unix => {
                let socket = scratch.join(format!("raw-{run}-{}.sock", args[0]));
                let _ = std::fs::remove_file(&socket);
                let listener = UnixListener::bind(&socket)
                    .with_context(|| format!("binding {}", socket.display()))?;
                let child = command
                    .arg("--unix")
                    .arg(&socket)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .context("spawning the raw peer")?;
                let (stream, _) = listener.accept().context("accepting the raw peer")?;
                let reader = stream.try_clone()?;
                Peer {
                    child,
                    reader: Box::new(reader),
                    writer: Box::new(stream),
                    socket: Some(socket),
                }
            }
            Link::Tcp => {
                let listener =
                    TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
                let address = listener.local_addr()?;
                let child = command
                    .arg("--tcp")
                    .arg(address.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .context("spawning the raw peer")?;
                let (stream, _) = listener.accept().context("accepting the raw peer")?;
                stream.set_nodelay(true)?;
                let reader = stream.try_clone()?;
                Peer {
                    child,
                    reader: Box::new(reader),
                    writer: Box::new(stream),
                    socket: None,
                }
            }
            Link::Pipe => {
                let mut child = command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .context("spawning the raw peer")?;
                let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                    bail!("the raw peer has no pipes");
                };
                // The pipe transport grows its pipes the same way, so the
                // bare pipe is measured at the size the servers use.
                for pipe in [stdin.as_fd(), stdout.as_fd()] {
                    rustix::pipe::fcntl_setpipe_size(pipe, PIPE_BUFFER_BYTES)
                        .context("growing the raw peer's pipe")?;
                }
                Peer {
                    child,
                    reader: Box::new(stdout),
                    writer: Box::new(stdin),
                    socket: None,
                }
            }
        };
        // The peer says when it is running, so its start-up is not timed.
        let mut ready = [0u8; 1];
        peer.reader
            .read_exact(&mut ready)
            .context("waiting for the raw peer")?;
        Ok(peer)
    }

    /// Hangs up and waits for the peer to exit.
    fn finish(mut self) -> Result<()> {
        // Closing both halves (a socket's halves share one connection) is
        // the peer's end of input.
        self.writer = Box::new(std::io::sink());
        self.reader = Box::new(std::io::empty());
        let status = self.child.wait()?;
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
        if !status.success() {
            bail!("the raw peer failed ({status})");
        }
        Ok(())
    }
}

/// Entry point of `raw-peer` mode: `echo SIZE` or `sink TOTAL`, on
/// stdin/stdout or, after `--unix PATH` or `--tcp ADDRESS`, on that socket.
pub(crate) fn peer_main(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (job, rest) = match args.as_slice() {
        [job, size, rest @ ..] => ((*job, size.parse::<usize>()?), rest),
        _ => bail!("usage: raw-peer (echo SIZE | sink TOTAL) [--unix PATH | --tcp ADDRESS]"),
    };
    let (mut reader, mut writer): (Box<dyn Read>, Box<dyn Write>) = match rest {
        [] => (
            Box::new(std::io::stdin().lock()),
            Box::new(std::io::stdout().lock()),
        ),
        ["--unix", path] => {
            let stream = UnixStream::connect(path).with_context(|| format!("connecting {path}"))?;
            (Box::new(stream.try_clone()?), Box::new(stream))
        }
        ["--tcp", address] => {
            let stream =
                TcpStream::connect(address).with_context(|| format!("connecting {address}"))?;
            stream.set_nodelay(true)?;
            (Box::new(stream.try_clone()?), Box::new(stream))
        }
        _ => bail!("raw-peer: unexpected arguments {rest:?}"),
    };
    writer.write_all(&[1])?;
    writer.flush()?;
    match job {
        ("echo", size) => {
            let mut message = vec![0u8; size];
            loop {
                match reader.read_exact(&mut message) {
                    Ok(()) => {
                        writer.write_all(&message)?;
                        // Standard output buffers until a newline otherwise.
                        writer.flush()?;
                    }
                    Err(err) if err.kind() == ErrorKind::UnexpectedEof => return Ok(()),
                    Err(err) => return Err(err.into()),
                }
            }
        }
        ("sink", total) => {
            let mut buffer = vec![0u8; CHUNK];
            let mut left = total;
            while left > 0 {
                let n = reader.read(&mut buffer[..left.min(CHUNK)])?;
                if n == 0 {
                    bail!("raw-peer: input ended {left} bytes early");
                }
                left -= n;
            }
            writer.write_all(&[1])?;
            writer.flush()?;
            Ok(())
        }
        (other, _) => bail!("raw-peer: unknown job {other:?}"),
    }
}
