//! `vgi-conformance-worker`: serves the reference `ConformanceService` so
//! the reference conformance suite can judge this implementation.
//!
//! With no flags it serves over stdin/stdout (the pipe transport).

use std::process::ExitCode;

use vgirpc::Server;
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};

const USAGE: &str = "usage: vgi-conformance-worker [--help]\n\
\n\
Serves the vgi-rpc ConformanceService over stdin/stdout.";

fn main() -> ExitCode {
    // Standard output carries Arrow IPC only, so diagnostics go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VGI_RPC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(arg) = args.first() {
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        eprintln!("unknown argument {arg:?}\n{USAGE}");
        return ExitCode::from(2);
    }

    let server = match Server::new(ConformanceServiceServer::new(Conformance)) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("cannot build the conformance server: {err}");
            return ExitCode::FAILURE;
        }
    };
    match vgirpc_pipe::serve_stdio(&server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = ?err, "worker stopped");
            ExitCode::FAILURE
        }
    }
}
