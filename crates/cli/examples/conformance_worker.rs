//! The reference `ConformanceService` over stdin/stdout, the server the
//! CLI's own tests point `vgi-rpc --cmd` at (`cargo test` builds examples,
//! so the tests need nothing outside this package).

use std::process::ExitCode;

use vgirpc::Server;
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};

fn main() -> ExitCode {
    let served = Server::new(ConformanceServiceServer::new(Conformance))
        .map_err(|e| e.to_string())
        .and_then(|server| {
            vgirpc_pipe::serve_stdio(&server)
                .map(drop)
                .map_err(|e| e.to_string())
        });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("conformance_worker: {err}");
            ExitCode::FAILURE
        }
    }
}
