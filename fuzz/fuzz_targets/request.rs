//! Request decoding and dispatch: a whole pipe connection's bytes served by
//! `vgirpc::Server` (the bounded conformance service), which opens each
//! request stream, validates version and method, decodes the parameters,
//! runs the call and steps any stream on the input streams that follow.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vgirpc::{Server, TransportKind};
use vgirpc_fuzz::budget::check_input;
use vgirpc_fuzz::service::conformance_server;

fuzz_target!(
    init: {
        SERVER.set(conformance_server()).ok();
    },
    |data: &[u8]| {
        let server = SERVER.get().expect("initialised");
        check_input(data.len(), || {
            let _ = server.serve(data, std::io::sink(), TransportKind::Pipe);
        });
    }
);

static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
