//! Serving on the process's own stdin and stdout, until the client closes
//! the input or a termination signal asks the worker to stop.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{PollFd, PollFlags, poll};
use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};
use vgirpc::transport::{Served, SideChannels};
use vgirpc::{Peer, Server, TransportKind};

use crate::{PipeError, ShmSideChannels};

/// Why [`serve_stdio`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StdioShutdown {
    /// The client closed the worker's standard input.
    InputClosed,
    /// SIGTERM or SIGINT arrived. The request in flight, if any, was
    /// answered first; a second signal ends the process at once.
    Signal,
}

/// Exit status of a worker whose second termination signal cut a request short.
const FORCED_EXIT_STATUS: i32 = 1;

/// Serves `server` on this process's stdin and stdout until stdin closes
/// or SIGTERM/SIGINT arrives, then returns, so the caller's cleanup runs.
///
/// A signal never cuts a request short: one that arrives while a request
/// or stream is in progress takes effect once it is answered. Every
/// response is flushed as soon as it is complete. Requests that name a
/// shared-memory segment use it as a side channel ([`ShmSideChannels`]).
pub fn serve_stdio(server: &Server) -> Result<StdioShutdown, PipeError> {
    let termination = Termination::install()?;
    // Std's handles buffer on their own, and stdout's is line-buffered: a
    // response containing a newline byte would go out in two writes and
    // wake the client twice. Plain files over the same descriptors leave
    // buffering to the writers below, which flush once per response.
    let stdin = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let stdout = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    crate::enlarge_pipe(&stdin);
    crate::enlarge_pipe(&stdout);
    let between_requests = Cell::new(true);
    let input = UntilTerminated {
        input: stdin,
        termination: &termination,
        between_requests: &between_requests,
    };
    let mut reader = BufReader::with_capacity(crate::BUFFER_BYTES, input);
    let mut writer = BufWriter::with_capacity(crate::BUFFER_BYTES, stdout);
    // The parent that launched the worker is the caller; it is anonymous.
    let peer = Peer::anonymous(TransportKind::Pipe);
    server.notify_serve_start(TransportKind::Pipe)?;
    let outcome = loop {
        between_requests.set(true);
        match server.serve_one(&mut reader, &mut writer, &peer, &ShmSideChannels) {
            Ok(Served::Request) => {}
            Ok(Served::Closed) => break Ok(()),
            Err(err) if err.is_disconnect() => break Ok(()),
            Err(err) => break Err(err),
        }
    };
    ShmSideChannels.connection_closed();
    outcome?;
    Ok(if termination.requested() {
        tracing::info!("termination signal received; pipe transport finished");
        StdioShutdown::Signal
    } else {
        tracing::debug!("stdin closed; pipe transport finished");
        StdioShutdown::InputClosed
    })
}

/// SIGTERM and SIGINT, caught for as long as the pipe serves: a flag, and
/// a socket the handler writes to so a blocked wait wakes up.
struct Termination {
    requested: Arc<AtomicBool>,
    wake: UnixStream,
    handlers: Vec<SigId>,
}

impl Termination {
    fn install() -> Result<Self, PipeError> {
        let requested = Arc::new(AtomicBool::new(false));
        let (wake, notify) = UnixStream::pair().map_err(PipeError::Signals)?;
        wake.set_nonblocking(true).map_err(PipeError::Signals)?;
        notify.set_nonblocking(true).map_err(PipeError::Signals)?;
        let mut handlers = Vec::new();
        for signal in [SIGTERM, SIGINT] {
            // Handlers run in the order registered: the exit check sees the
            // flag as it was before this signal, and the flag is set before
            // the waiting reader is woken.
            let notify = notify.try_clone().map_err(PipeError::Signals)?;
            let registered = [
                signal_hook::flag::register_conditional_shutdown(
                    signal,
                    FORCED_EXIT_STATUS,
                    requested.clone(),
                ),
                signal_hook::flag::register(signal, requested.clone()),
                signal_hook::low_level::pipe::register(signal, notify),
            ];
            for handler in registered {
                handlers.push(handler.map_err(PipeError::Signals)?);
            }
        }
        Ok(Self {
            requested,
            wake,
            handlers,
        })
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

impl Drop for Termination {
    fn drop(&mut self) {
        for handler in self.handlers.drain(..) {
            signal_hook::low_level::unregister(handler);
        }
    }
}

/// Standard input that reads as closed once termination was requested, but
/// only while the server waits for a new request.
struct UntilTerminated<'a> {
    input: File,
    termination: &'a Termination,
    between_requests: &'a Cell<bool>,
}

impl Read for UntilTerminated<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.between_requests.get() && !self.wait_for_input()? {
            return Ok(0);
        }
        let read = self.input.read(buf)?;
        if read > 0 {
            self.between_requests.set(false);
        }
        Ok(read)
    }
}

impl UntilTerminated<'_> {
    /// Waits until stdin has something to read (`true`) or termination is
    /// requested (`false`).
    fn wait_for_input(&self) -> std::io::Result<bool> {
        loop {
            if self.termination.requested() {
                return Ok(false);
            }
            let mut fds = [
                PollFd::new(&self.input, PollFlags::IN),
                PollFd::new(&self.termination.wake, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            }
            if !fds[1].revents().is_empty() {
                // Emptied so the next wait blocks again; the flag is the record.
                let mut drained = [0u8; 64];
                while matches!((&self.termination.wake).read(&mut drained), Ok(n) if n > 0) {}
                continue;
            }
            // Readable, closed or failed: the read reports which.
            if !fds[0].revents().is_empty() {
                return Ok(true);
            }
        }
    }
}
