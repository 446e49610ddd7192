//! A threaded Unix-socket server on its own thread, stopped through
//! `serve_unix_until` when the test is done with it.

use std::path::PathBuf;
use std::sync::mpsc::channel;
use std::thread::JoinHandle;

use vgirpc::Server;
use vgirpc::transport::NoSideChannels;
use vgirpc_pipe::{PipeError, UnixConfig, UnixShutdown, serve_unix_until};

use super::client::{HANG, socket_path};

/// A server started by [`start`]; told to stop when dropped.
pub(crate) struct Running {
    pub(crate) path: PathBuf,
    pub(super) stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The server's thread, which returns what `serve_unix_until` did.
pub(crate) type Serving = JoinHandle<Result<UnixShutdown, PipeError>>;

/// Serves `server` on a fresh socket path, `configure`d on top of a
/// threaded configuration; returns once it listens.
pub(crate) fn start(server: Server, configure: impl FnOnce(&mut UnixConfig)) -> (Running, Serving) {
    let path = socket_path("server");
    let mut config = UnixConfig::new(&path);
    config.threaded = true;
    configure(&mut config);
    let (ready, listening) = channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        serve_unix_until(
            &server,
            &config,
            NoSideChannels,
            |_| ready.send(()).unwrap(),
            async {
                let _ = stopped.await;
            },
        )
    });
    listening.recv_timeout(HANG).expect("the server listens");
    let running = Running {
        path,
        stop: Some(stop),
    };
    (running, serving)
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
