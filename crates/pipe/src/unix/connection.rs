//! One accepted connection: waiting cheaply, serving on a thread.
//!
//! The server core reads and writes synchronously, so a request needs a
//! thread while it is served. Waiting for the next request does not: a
//! connection between requests is a small task on the accept loop's
//! runtime, woken when its socket turns readable. Only then does it take
//! one of the serving threads (and a pair of I/O buffers), for as long as
//! requests keep coming; a connection that falls quiet gives both back.
//! Idle clients thus cost a socket and about a kilobyte of memory each.

use std::io::{BufReader, BufWriter, ErrorKind, Read};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use vgirpc::transport::{Served, SideChannels};
use vgirpc::wire::ipc::mid_message;
use vgirpc::{AuthContext, Peer, ServeError, Server, TransportKind};

/// Read and write buffers of a connection while it is served: large
/// enough that a big batch crosses in few system calls.
const BUFFER_BYTES: usize = 256 * 1024;

/// How long a serving thread stays with a connection after answering it,
/// in case the next request follows at once, once the connection has shown
/// it calls in a loop (its request came within this long of the last
/// answer). Such a client then pays no hand-off between threads per call.
/// A connection that makes a call now and then gives its thread back at
/// once: lingering there would only make the pool start more threads,
/// each of which keeps some memory of its own.
const LINGER: Duration = Duration::from_millis(5);

/// Where the server is in its life; connections act on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Accepting and serving.
    Serving,
    /// No longer accepting: requests already received are answered, then
    /// their connections close; idle connections close at once.
    Draining,
    /// The grace period is over: every connection closes now.
    Closing,
}

/// What every connection of one listener shares.
pub(super) struct Shared<S> {
    pub(super) server: Server,
    pub(super) side_channels: S,
    pub(super) phase: watch::Sender<Phase>,
    pub(super) connections: Connections,
    /// One permit per request that may be served at once.
    threads: Arc<Semaphore>,
    /// Connections with a request waiting for a serving thread: while there
    /// are any, a thread does not linger on a quiet connection.
    waiting_for_thread: AtomicUsize,
    /// See [`UnixConfig::body_read_timeout`](super::UnixConfig::body_read_timeout).
    body_read_timeout: Option<Duration>,
}

impl<S: SideChannels + Send + Sync + 'static> Shared<S> {
    pub(super) fn new(
        server: Server,
        side_channels: S,
        max_active_requests: usize,
        body_read_timeout: Option<Duration>,
    ) -> Self {
        Self {
            server,
            side_channels,
            phase: watch::Sender::new(Phase::Serving),
            connections: Connections::default(),
            threads: Arc::new(Semaphore::new(max_active_requests)),
            waiting_for_thread: AtomicUsize::new(0),
            body_read_timeout,
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Waits for a serving thread; `None` once the server is closing.
    async fn take_thread(
        &self,
        phase: &mut watch::Receiver<Phase>,
    ) -> Option<OwnedSemaphorePermit> {
        let _waiting = Waiting::on(&self.waiting_for_thread);
        tokio::select! {
            permit = self.threads.clone().acquire_owned() => permit.ok(),
            _ = phase.wait_for(|phase| *phase == Phase::Closing) => None,
        }
    }

    /// Serves requests on `stream` for as long as they follow one another
    /// closely (waiting up to [`LINGER`] for each next one if `linger`);
    /// runs on a serving thread.
    fn serve_busy_period(
        &self,
        stream: &StdUnixStream,
        peer: &Peer,
        linger: bool,
    ) -> Result<Next, ServeError> {
        let _parked = ParkedOnReturn(&self.side_channels);
        let requests = Requests::new(stream, linger, self.body_read_timeout)?;
        let mut reader = BufReader::with_capacity(BUFFER_BYTES, requests);
        let mut writer = BufWriter::with_capacity(BUFFER_BYTES, stream);
        loop {
            match self
                .server
                .serve_one(&mut reader, &mut writer, peer, &self.side_channels)
            {
                Ok(Served::Request) => {}
                Ok(Served::Closed) if reader.get_ref().fell_quiet => return Ok(self.quiet()),
                Ok(Served::Closed) => return Ok(Next::Close),
                Err(err) if err.is_disconnect() => return Ok(Next::Close),
                Err(err) => return Err(err),
            }
            // Bytes already buffered are the start of the next request:
            // they must be served here, where they are.
            if !reader.buffer().is_empty() {
                continue;
            }
            let keep_lingering = linger
                && self.phase() == Phase::Serving
                && self.waiting_for_thread.load(Ordering::SeqCst) == 0;
            if keep_lingering {
                reader.get_mut().expect_request()?;
                continue;
            }
            if readable_now(stream)? {
                continue;
            }
            if self.phase() != Phase::Serving && last_request_arrived(stream)? {
                continue;
            }
            return Ok(self.quiet());
        }
    }

    /// What a connection that has fallen quiet does next.
    fn quiet(&self) -> Next {
        if self.phase() == Phase::Serving {
            Next::Wait
        } else {
            Next::Close
        }
    }
}

/// A connection's requests as a serving thread reads them.
///
/// Between requests of a lingering connection, the socket's receive
/// timeout is [`LINGER`], and a read that times out reads as the end of
/// the stream: `serve_one` then returns cleanly, with nothing consumed,
/// and `fell_quiet` tells that apart from a peer that hung up. Waiting
/// this way costs nothing per call beyond the read a request needs
/// anyway. Within a request, the first timeout lifts [`LINGER`]. From then
/// on a peer partway through a message ([`mid_message`]) must send its
/// next bytes within the body-read timeout, or the read fails; between the
/// messages of a call (a client thinking between the turns of a stream)
/// it may pause as long as it likes.
struct Requests<'a> {
    stream: &'a StdUnixStream,
    body_read_timeout: Option<Duration>,
    /// What the socket's receive timeout is set to.
    wait: Wait,
    between_requests: bool,
    fell_quiet: bool,
}

/// The receive timeouts a serving thread sets on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Linger,
    /// The body-read timeout, or no limit when there is none.
    Body,
    Forever,
}

impl<'a> Requests<'a> {
    /// The busy period's first request has begun to arrive already.
    fn new(
        stream: &'a StdUnixStream,
        linger: bool,
        body_read_timeout: Option<Duration>,
    ) -> std::io::Result<Self> {
        let mut requests = Self {
            stream,
            body_read_timeout,
            wait: Wait::Forever,
            between_requests: false,
            fell_quiet: false,
        };
        // Set whatever the last busy period left: the socket keeps it.
        requests.wait(if linger { Wait::Linger } else { Wait::Body })?;
        Ok(requests)
    }

    fn wait(&mut self, wait: Wait) -> std::io::Result<()> {
        let timeout = match wait {
            Wait::Linger => Some(LINGER),
            Wait::Body => self.body_read_timeout,
            Wait::Forever => None,
        };
        self.stream.set_read_timeout(timeout)?;
        self.wait = wait;
        Ok(())
    }

    /// The next read starts a request, if one comes within [`LINGER`].
    fn expect_request(&mut self) -> std::io::Result<()> {
        if self.wait != Wait::Linger {
            self.wait(Wait::Linger)?;
        }
        self.between_requests = true;
        Ok(())
    }

    /// A peer that owes the rest of a message gets the body-read timeout;
    /// any other wait is the peer's own time.
    fn wait_for_more(&mut self) -> std::io::Result<()> {
        self.wait(if mid_message() {
            Wait::Body
        } else {
            Wait::Forever
        })
    }
}

impl Read for Requests<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.wait == Wait::Forever && self.body_read_timeout.is_some() && mid_message() {
                self.wait(Wait::Body)?;
            }
            match (&mut &*self.stream).read(buf) {
                Ok(read) => {
                    if read > 0 {
                        self.between_requests = false;
                    }
                    return Ok(read);
                }
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.between_requests {
                        self.fell_quiet = true;
                        return Ok(0);
                    }
                    match (self.wait, self.body_read_timeout) {
                        (Wait::Body, Some(timeout)) if mid_message() => {
                            return Err(std::io::Error::new(
                                ErrorKind::TimedOut,
                                format!(
                                    "no bytes arrived for {} s in the middle of a message; \
                                     the connection was abandoned",
                                    timeout.as_secs_f64()
                                ),
                            ));
                        }
                        _ => self.wait_for_more()?,
                    }
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// One connection counted among those waiting for a serving thread, for
/// as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn on(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a connection does after a busy period.
enum Next {
    /// Wait, without a thread, for its next request.
    Wait,
    /// Close: the peer left, or the server is draining.
    Close,
}

/// Lets the side channels go of what they kept for this connection on the
/// serving thread, which serves other connections next; also when the
/// serving code panics.
struct ParkedOnReturn<'a, S: SideChannels>(&'a S);

impl<S: SideChannels> Drop for ParkedOnReturn<'_, S> {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// The number of open connections, and a wake-up whenever one closes.
#[derive(Debug, Default)]
pub(super) struct Connections {
    open: AtomicUsize,
    closed: Notify,
}

impl Connections {
    /// Connections accepted and not yet closed.
    pub(super) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Resolves after a connection closed (or at once, if one closed since
    /// the last call). Only the accept loop waits here.
    pub(super) async fn closed(&self) {
        self.closed.notified().await;
    }
}

/// An accepted connection's place among the limit; it is given back when
/// dropped, however the connection ends.
pub(super) struct Slot<S: SideChannels + Send + Sync + 'static> {
    shared: Arc<Shared<S>>,
}

impl<S: SideChannels + Send + Sync + 'static> Slot<S> {
    pub(super) fn take(shared: &Arc<Shared<S>>) -> Self {
        shared.connections.open.fetch_add(1, Ordering::SeqCst);
        Self {
            shared: Arc::clone(shared),
        }
    }
}

impl<S: SideChannels + Send + Sync + 'static> Drop for Slot<S> {
    fn drop(&mut self) {
        self.shared.connections.open.fetch_sub(1, Ordering::SeqCst);
        self.shared.connections.closed.notify_one();
    }
}

/// Serves one connection until it closes, holding its slot throughout.
pub(super) async fn run<S>(slot: Slot<S>, mut stream: UnixStream)
where
    S: SideChannels + Send + Sync + 'static,
{
    let shared = Arc::clone(&slot.shared);
    let peer = unix_peer(&stream);
    let mut phase = shared.phase.subscribe();
    let mut last_answered: Option<Instant> = None;
    loop {
        match next_request(&stream, &mut phase).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                tracing::debug!(%err, "unix connection failed while idle");
                return;
            }
        }
        let linger = last_answered.is_some_and(|answered| answered.elapsed() < LINGER);
        let Some(thread) = shared.take_thread(&mut phase).await else {
            return;
        };
        match serve_on_thread(&shared, &peer, stream, thread, linger, &mut phase).await {
            Some(idle) => stream = idle,
            None => return,
        }
        last_answered = Some(Instant::now());
    }
}

/// Waits until the peer sends something: `true` when a request has begun
/// to arrive, `false` when the connection should close (the peer hung up,
/// or the server drains and nothing was sent).
async fn next_request(
    stream: &UnixStream,
    phase: &mut watch::Receiver<Phase>,
) -> std::io::Result<bool> {
    loop {
        tokio::select! {
            ready = stream.readable() => {
                ready?;
                match stream.try_io(Interest::READABLE, || peek(stream)) {
                    Ok(read) => return Ok(read > 0),
                    // The readiness was stale; wait for the next.
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
            }
            _ = phase.wait_for(|phase| *phase != Phase::Serving) => {
                // Bytes sent before the drain began are a request received,
                // to be answered like the ones already being served.
                return match peek(stream) {
                    Ok(read) => Ok(read > 0),
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {
                        last_request_arrived(stream)
                    }
                    Err(err) => Err(err),
                };
            }
        }
    }
}

/// Closes the reading side of a quiet connection of a draining server and
/// says whether a request slipped in before it did.
///
/// A client of a byte stream has no way to learn that the server is going
/// away except the connection ending, so a request it sends just as an
/// idle connection is closed would be lost without an answer. Shutting
/// reading down first splits that moment cleanly: a request already in
/// the socket is still read and answered, and any later write fails at
/// once in the client (EPIPE), which then knows the server never took it.
fn last_request_arrived(stream: &impl std::os::fd::AsFd) -> std::io::Result<bool> {
    let socket = SockRef::from(stream);
    match socket.shutdown(Shutdown::Read) {
        Ok(()) => {}
        // Already closed by the peer.
        Err(err) if err.kind() == ErrorKind::NotConnected => return Ok(false),
        Err(err) => return Err(err),
    }
    let mut byte = [MaybeUninit::uninit()];
    match socket.peek(&mut byte) {
        Ok(read) => Ok(read > 0),
        Err(err) if err.kind() == ErrorKind::WouldBlock => Ok(false),
        Err(err) => Err(err),
    }
}

/// How many bytes are waiting on `stream` (at most one is looked at),
/// leaving them there; 0 when the peer has closed.
fn peek(stream: &impl std::os::fd::AsFd) -> std::io::Result<usize> {
    let mut byte = [MaybeUninit::uninit()];
    SockRef::from(stream).peek(&mut byte)
}

/// Serves a busy period of `stream` on a serving thread; hands the stream
/// back once it is quiet, or `None` when it has closed.
async fn serve_on_thread<S>(
    shared: &Arc<Shared<S>>,
    peer: &Peer,
    stream: UnixStream,
    thread: OwnedSemaphorePermit,
    linger: bool,
    phase: &mut watch::Receiver<Phase>,
) -> Option<UnixStream>
where
    S: SideChannels + Send + Sync + 'static,
{
    let stream = match blocking(stream) {
        Ok(stream) => Arc::new(stream),
        Err(err) => {
            tracing::debug!(%err, "cannot hand a unix connection to a serving thread");
            return None;
        }
    };
    let mut job = tokio::task::spawn_blocking({
        let shared = Arc::clone(shared);
        let stream = Arc::clone(&stream);
        let peer = peer.clone();
        move || {
            let _thread = thread;
            shared.serve_busy_period(&stream, &peer, linger)
        }
    });
    let outcome = tokio::select! {
        outcome = &mut job => outcome,
        _ = phase.wait_for(|phase| *phase == Phase::Closing) => {
            // The grace period is over. Ending the connection stops the call
            // at its next read or write; a call that never does is left to
            // finish on its own, without its slot.
            if let Err(err) = stream.shutdown(Shutdown::Both) {
                tracing::debug!(%err, "cannot end a unix connection");
            }
            return None;
        }
    };
    match outcome {
        Ok(Ok(Next::Wait)) => {}
        Ok(Ok(Next::Close)) => return None,
        Ok(Err(err)) => {
            // One client's broken stream must not affect any other client.
            tracing::debug!(error = ?err, "unix connection ended with an error");
            return None;
        }
        Err(err) => {
            if err.is_panic() {
                tracing::error!("a call panicked; its unix connection is closed");
            }
            return None;
        }
    }
    // The serving thread let go of its handle when its work returned.
    let stream = Arc::into_inner(stream)?;
    match waiting(stream) {
        Ok(stream) => Some(stream),
        Err(err) => {
            tracing::debug!(%err, "cannot take a unix connection back from its serving thread");
            None
        }
    }
}

fn blocking(stream: UnixStream) -> std::io::Result<StdUnixStream> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

fn waiting(stream: StdUnixStream) -> std::io::Result<UnixStream> {
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}

/// Whether `stream` has something to read (bytes, or the peer's hang-up)
/// right now.
fn readable_now(stream: &StdUnixStream) -> std::io::Result<bool> {
    let no_wait = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        let mut fds = [PollFd::new(stream, PollFlags::IN)];
        match poll(&mut fds, Some(&no_wait)) {
            Ok(ready) => return Ok(ready > 0),
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

/// The connected process's credentials (`SO_PEERCRED`), as an identity in
/// domain `unix`: the kernel vouches for them, so the caller counts as
/// authenticated, with its uid as principal and uid, gid and pid as claims.
fn unix_peer(stream: &impl std::os::fd::AsFd) -> Peer {
    let peer = Peer::anonymous(TransportKind::Unix);
    match rustix::net::sockopt::socket_peercred(stream) {
        Ok(cred) => {
            let uid = cred.uid.as_raw();
            peer.with_auth(
                AuthContext::authenticated("unix", uid.to_string())
                    .with_claim("uid", uid)
                    .with_claim("gid", cred.gid.as_raw())
                    .with_claim("pid", cred.pid.as_raw_nonzero().get()),
            )
        }
        Err(err) => {
            tracing::debug!(%err, "unix peer credentials unavailable; caller is anonymous");
            peer
        }
    }
}
