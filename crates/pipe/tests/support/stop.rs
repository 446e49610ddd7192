//! Stopping a [`Running`] server while the test watches, and waiting for
//! it to return.

use std::time::{Duration, Instant};

use vgirpc_pipe::UnixShutdown;

use super::client::HANG;
use super::server::{Running, Serving};

impl Running {
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
    }
}

/// Waits for the server to return.
pub(crate) fn stopped(serving: Serving) -> UnixShutdown {
    let start = Instant::now();
    while !serving.is_finished() {
        assert!(start.elapsed() < HANG, "the server is still serving");
        std::thread::sleep(Duration::from_millis(10));
    }
    serving.join().unwrap().unwrap()
}
