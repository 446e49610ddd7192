//! A probe server whose `held` calls the test sees arrive and lets go one
//! by one.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

use vgirpc::Server;

use super::client::HANG;
use super::probe::probe_server_holding;

/// The test's side of `held`: sees calls arrive and lets them go.
pub(crate) struct Gate {
    entered: Receiver<String>,
    release: Sender<()>,
}

impl Gate {
    /// Waits until a `held` call has started; returns its value.
    pub(crate) fn entered(&self) -> String {
        self.entered
            .recv_timeout(HANG)
            .expect("a held call started")
    }

    /// Lets one `held` call return.
    pub(crate) fn open(&self) {
        self.release.send(()).unwrap();
    }
}

/// A probe server and the gate of its `held` calls.
pub(crate) fn gated_probe_server() -> (Server, Gate) {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let server = probe_server_holding(move |value| {
        let _ = entered_tx.lock().unwrap().send(value.to_owned());
        release_rx
            .lock()
            .unwrap()
            .recv_timeout(HANG)
            .expect("the test opens the gate");
    });
    (server, Gate { entered, release })
}
