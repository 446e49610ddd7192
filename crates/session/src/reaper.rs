use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::registry::Registry;

/// How often the reaper looks for expired sessions by default.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// A background thread that evicts expired sessions every tick.
///
/// It holds the registry weakly, so it never keeps one alive; it stops
/// when the registry is gone or when this handle is dropped.
#[derive(Debug)]
pub struct Reaper {
    /// Dropping the sender wakes the thread and tells it to stop.
    _stop: mpsc::Sender<()>,
}

impl Registry {
    /// Starts a reaper for this registry, ticking every `tick`.
    pub fn spawn_reaper(&self, tick: Duration) -> std::io::Result<Reaper> {
        let (stop, stopped) = mpsc::channel::<()>();
        let registry = self.downgrade();
        thread::Builder::new()
            .name("vgi-rpc-sticky-reaper".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    let Some(registry) = registry.upgrade() else {
                        return;
                    };
                    let evicted = registry.evict_expired(Instant::now());
                    if evicted > 0 {
                        tracing::debug!(evicted, "evicted expired sticky sessions");
                    }
                }
            })?;
        Ok(Reaper { _stop: stop })
    }
}
