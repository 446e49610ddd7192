//! The TCP stream of a served connection, which keeps the connection's
//! header and keep-alive deadlines on its reads and closes it when it is
//! idle and the server drains or wants its slot.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::{Activity, Shared};
use crate::config::ConnectionLimits;

/// How long a connection must have waited for its next request before a
/// drain, or a new connection wanting its slot, closes it. A client that
/// answers a response with its next request at once would otherwise often
/// find the connection closed under that request.
const QUIET: Duration = Duration::from_millis(250);

/// What the connection is doing, as its socket sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte of the next request since `since`; closed at `until`, if
    /// anything.
    Waiting {
        since: Instant,
        until: Option<Instant>,
    },
    /// Part of a request head has arrived; closed at the instant, if any.
    Head(Option<Instant>),
    /// A request is being served or its response sent.
    Busy,
}

/// The TCP stream of a connection, enforcing its deadlines on reads.
pub(super) struct Socket {
    stream: TcpStream,
    activity: Arc<Activity>,
    shared: Arc<Shared>,
    header_timeout: Option<Duration>,
    keep_alive_timeout: Option<Duration>,
    phase: Phase,
    /// Requests answered when the phase was last set.
    answered: u64,
    /// Nothing has been read from the connection yet.
    silent: bool,
    /// Asked to make room for a new connection while silent.
    evicted: bool,
    /// Asked to close once it has waited [`QUIET`] for a request.
    closing: bool,
    /// When the connection's state is next checked, if ever.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    evictions_seen: u64,
}

/// `at + timeout`, when there is a timeout.
fn after(at: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|timeout| at + timeout)
}

impl Socket {
    pub(super) fn new(
        stream: TcpStream,
        activity: Arc<Activity>,
        shared: Arc<Shared>,
        limits: ConnectionLimits,
        evictions_seen: u64,
    ) -> Self {
        let now = Instant::now();
        let mut socket = Self {
            stream,
            activity,
            shared,
            header_timeout: limits.header_read_timeout,
            keep_alive_timeout: limits.keep_alive_timeout,
            // A new connection owes its first request head at once.
            phase: Phase::Waiting {
                since: now,
                until: after(now, limits.header_read_timeout),
            },
            answered: 0,
            silent: true,
            evicted: false,
            closing: false,
            timer: None,
            armed: false,
            evictions_seen,
        };
        socket.arm(now);
        socket
    }

    /// Follows requests that began or ended since the last look.
    fn observe(&mut self) {
        let requests = self.activity.current();
        if requests.open > 0 {
            // Body bytes, or the client closing: the service's own
            // timeouts apply, not the connection's. The timer stays where
            // it is, no later than the earliest possible keep-alive end.
            self.phase = Phase::Busy;
        } else if requests.answered != self.answered || self.phase == Phase::Busy {
            self.phase = Phase::Waiting {
                since: requests.answered_at,
                until: after(requests.answered_at, self.keep_alive_timeout),
            };
            self.arm(Instant::now());
        }
        self.answered = requests.answered;
    }

    /// Sets the timer to the next moment the connection must be looked at.
    fn arm(&mut self, now: Instant) {
        // A request under way or a head arriving may end the next moment,
        // and the connection then idles: look again by the time that
        // idling could have lasted the keep-alive timeout.
        let idle_by = after(now, self.keep_alive_timeout);
        let at = match self.phase {
            Phase::Waiting { since, until } if self.closing => {
                Some(until.map_or(since + QUIET, |until| until.min(since + QUIET)))
            }
            Phase::Waiting { until, .. } => until,
            Phase::Head(until) => match (until, idle_by) {
                (Some(until), Some(idle_by)) => Some(until.min(idle_by)),
                (until, idle_by) => until.or(idle_by),
            },
            Phase::Busy => idle_by,
        };
        self.armed = at.is_some();
        let Some(at) = at else { return };
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(at),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Polls the timer, setting it again until the connection is past its
    /// deadline; then says why it is. Once a connection asked to close has
    /// waited long enough, it wakes the read that closes it.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        loop {
            let timer = self.timer.as_mut().filter(|_| self.armed)?;
            if timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            let now = Instant::now();
            let expired =
                match self.phase {
                    Phase::Waiting { until, .. } => until
                        .is_some_and(|until| until <= now)
                        .then_some(if self.silent {
                            "no request arrived within the header read timeout"
                        } else {
                            "the connection was idle for longer than the keep-alive timeout"
                        }),
                    Phase::Head(until) => until
                        .is_some_and(|until| until <= now)
                        .then_some("the request head took longer than the header read timeout"),
                    Phase::Busy => None,
                };
            if let Some(reason) = expired {
                return Some(io::Error::new(io::ErrorKind::TimedOut, reason));
            }
            if let Phase::Waiting { since, .. } = self.phase
                && self.closing
                && now >= since + QUIET
            {
                self.armed = false;
                cx.waker().wake_by_ref();
                return None;
            }
            self.arm(now);
        }
    }

    /// Whether a connection waiting for a request since `since` should
    /// close now rather than wait: when the server drains, or when it has
    /// not sent a byte and the server wants its slot for a new connection;
    /// and only once it has waited [`QUIET`], and nothing has arrived. An
    /// idle connection may be closed at any time in HTTP/1.1, but not under
    /// a request it has received.
    fn should_close_idle(&mut self, since: Instant) -> io::Result<bool> {
        let evictions = self.shared.evictions.load(Ordering::Acquire);
        if evictions != self.evictions_seen {
            self.evictions_seen = evictions;
            self.evicted = self.silent;
        }
        self.closing = self.shared.draining() || (self.evicted && self.silent);
        if !self.closing {
            return Ok(false);
        }
        let now = Instant::now();
        if now < since + QUIET {
            self.arm(now);
            return Ok(false);
        }
        let mut probe = [MaybeUninit::<u8>::uninit()];
        match socket2::SockRef::from(&self.stream).peek(&mut probe) {
            Ok(0) => Ok(true),
            Ok(_) => Ok(false),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(true),
            Err(err) => Err(err),
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.observe();
        if let Phase::Waiting { since, .. } = this.phase
            && this.should_close_idle(since)?
        {
            // End of stream, as if the client had closed: hyper closes a
            // connection that waits for a request without an error.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if matches!(this.phase, Phase::Waiting { .. }) && buf.filled().len() > before {
                    let now = Instant::now();
                    this.silent = false;
                    this.phase = Phase::Head(after(now, this.header_timeout));
                    this.arm(now);
                }
                Poll::Ready(result)
            }
            Poll::Pending => match this.poll_expired(cx) {
                Some(err) => Poll::Ready(Err(err)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
