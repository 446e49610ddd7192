//! `vgi-conformance-worker`: serves the reference `ConformanceService` so
//! the reference conformance suite can judge this implementation.
//!
//! With no flags it serves over stdin/stdout (the pipe transport); `--unix`
//! serves on a Unix socket instead. Flags follow the reference worker's.
//! With `SENTRY_DSN` set, failed calls are reported to that Sentry project;
//! `--observe-discard` turns Sentry and OpenTelemetry on with nowhere to
//! send, for measuring what they cost; `--observe-bare-span` records only a
//! bare span per call, for what the OpenTelemetry SDK alone costs.

mod http_worker;
mod options;

use std::io::Write;
use std::process::ExitCode;

use options::{Options, Transport};
use vgirpc::Server;
use vgirpc_conformance::observe;
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};

/// Large batches are allocated and freed every round; glibc's allocator
/// hands such blocks back to the kernel on free, and faulting the pages in
/// again was most of the server's time on 8 MB exchanges. mimalloc keeps
/// them for reuse. It is built without transparent huge pages (see the
/// manifest): with them, the few small allocations of an idle worker held
/// 2 MiB each.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{}\n\n{}", options::USAGE, http_worker::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("vgi-conformance-worker: {message}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    // Standard output carries Arrow IPC or the one ready line only, so
    // diagnostics go to stderr.
    let observers = match observe::Observers::start(options.reporting) {
        Ok(observers) => observers,
        Err(message) => {
            eprintln!("vgi-conformance-worker: {message}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::new(ConformanceServiceServer::new(Conformance)) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("vgi-conformance-worker: cannot build the server: {err}");
            return ExitCode::FAILURE;
        }
    };
    observers.instrument(&server);
    if let Some(config) = options.access_log.clone() {
        match vgirpc_access_log::AccessLog::open(config) {
            Ok(log) => server.add_hook(log),
            Err(err) => {
                eprintln!("vgi-conformance-worker: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let outcome = match &options.transport {
        Transport::Pipe => vgirpc_pipe::serve_stdio(&server)
            .map(|shutdown| tracing::info!(?shutdown, "pipe worker stopped")),
        Transport::Http(http) => return http_worker::run(&server, http),
        Transport::Unix(config) => {
            vgirpc_pipe::serve_unix(&server, config, vgirpc_pipe::ShmSideChannels, |path| {
                let mut stdout = std::io::stdout().lock();
                // The launcher reads exactly this line to find the socket.
                let _ = writeln!(stdout, "UNIX:{}", path.display());
                let _ = stdout.flush();
            })
            .map(|shutdown| tracing::info!(?shutdown, "unix worker stopped"))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vgi-conformance-worker: {err}");
            tracing::error!(error = ?err, "worker stopped");
            ExitCode::FAILURE
        }
    }
}
