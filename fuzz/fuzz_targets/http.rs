//! HTTP request handling: head, body and stream-state token, as raw
//! HTTP/1.1 bytes into the worker's hyper connection and tower stack.
//! Exchange requests in the corpus carry tokens sealed with the harness
//! key, so mutations of everything around a token still reach a resumed
//! stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vgirpc_fuzz::budget::check_input;
use vgirpc_fuzz::http::HttpHarness;

static HARNESS: std::sync::OnceLock<HttpHarness> = std::sync::OnceLock::new();

fuzz_target!(
    init: {
        HARNESS.set(HttpHarness::new()).ok();
    },
    |data: &[u8]| {
        let harness = HARNESS.get().expect("initialised");
        check_input(data.len(), || {
            harness.exchange(data);
        });
    }
);
