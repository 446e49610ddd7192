//! One served connection: the header and keep-alive timeouts, and how an
//! idle connection is closed when the server drains or needs its slot.
//!
//! The socket itself keeps the deadlines ([`Socket`]): hyper always has a
//! read pending on a connection that waits for a request, so the deadline
//! is checked where that read is polled, with one timer per connection and
//! no wake-up per request. What the connection is doing is known from two
//! places: bytes read while it waits start a request head, and the service
//! counts requests from their call until their response body is dropped
//! (fully sent) in [`Activity`]. The socket does not see a response end
//! when it happens, so while a request is under way its timer is set to
//! the earliest moment the connection could have been idle for the
//! keep-alive timeout, and is set again from what it finds then.

use std::future::{Future, poll_fn};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

mod h2_streams;
mod self_wake;

use h2_streams::StreamExecutor;
use self_wake::SelfWake;

use crate::body::ResponseBody;
use crate::body::{RequestBody, request_body};
use crate::config::ConnectionLimits;
use crate::{HttpService, PeerCertificate, RemoteAddr};

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    draining: AtomicBool,
    /// Bumped when a new connection waits for a slot: connections that
    /// have not sent a byte yet close to make room.
    evictions: AtomicU64,
    /// Wakes every connection to look at the two fields above.
    wake: watch::Sender<()>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            draining: AtomicBool::new(false),
            evictions: AtomicU64::new(0),
            wake: watch::Sender::new(()),
        }
    }

    /// From now on, requests are answered with `Connection: close` and
    /// idle connections close.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
        self.wake.send_replace(());
    }

    /// Asks every connection that has not sent a byte yet to close. Idle
    /// keep-alive connections are left alone: their clients expect them
    /// to work, and the keep-alive timeout bounds them.
    pub(crate) fn evict_silent(&self) {
        self.evictions.fetch_add(1, Ordering::AcqRel);
        self.wake.send_replace(());
    }

    /// Evictions asked for so far: a connection accepted now is evicted
    /// by any later one, even one asked for before its task first runs.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Acquire)
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// Streams at once on one HTTP/2 connection. Each is a request that may
/// hold a blocking thread, so one connection must not take the whole pool.
const MAX_CONCURRENT_STREAMS: u32 = 64;

/// Serves `stream` until the client or a timeout closes it: HTTP/1.1, and
/// HTTP/2 when enabled (chosen by ALPN with TLS, by the client's preface
/// without), after a TLS handshake when `tls` is set. `evictions_seen` is
/// [`Shared::evictions`] when the connection was accepted.
pub(crate) async fn serve(
    (stream, peer, evictions_seen): (TcpStream, std::net::SocketAddr, u64),
    service: HttpService,
    limits: ConnectionLimits,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "cannot disable Nagle's algorithm");
    }
    let activity = Arc::new(Activity::new());
    let mut woken = shared.wake.subscribe();
    // The deadlines sit under TLS: handshake bytes start the first request
    // head, so the header read timeout bounds the handshake too.
    let socket = Socket::new(
        stream,
        activity.clone(),
        shared.clone(),
        limits,
        evictions_seen,
    );
    let Some(acceptor) = tls else {
        let http = Http {
            peer,
            certificate: None,
            service,
            limits,
            shared,
            activity,
        };
        return http.serve(socket, woken).await;
    };
    let mut handshake = acceptor.accept(socket);
    let stream = loop {
        tokio::select! {
            done = &mut handshake => match done {
                Ok(stream) => break stream,
                Err(err) => {
                    tracing::debug!(%err, %peer, "TLS handshake failed");
                    return;
                }
            },
            // The socket looks at the shared state when next polled.
            Ok(()) = woken.changed() => {}
        }
    };
    // Verified during the handshake; every request of the connection
    // carries it for authentication.
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| PeerCertificate(Bytes::copy_from_slice(leaf)));
    let http = Http {
        peer,
        certificate,
        service,
        limits,
        shared,
        activity,
    };
    http.serve(stream, woken).await;
}

/// What serving HTTP on one connection needs, past any TLS handshake.
struct Http {
    peer: std::net::SocketAddr,
    certificate: Option<PeerCertificate>,
    service: HttpService,
    limits: ConnectionLimits,
    shared: Arc<Shared>,
    activity: Arc<Activity>,
}

impl Http {
    async fn serve<I>(self, io: I, mut woken: watch::Receiver<()>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Http {
            peer,
            certificate,
            service,
            limits,
            shared,
            activity,
        } = self;
        let service = {
            let (begun, shared, activity) = (activity.clone(), shared.clone(), activity.clone());
            service
                .map_request(move |request: Request<Incoming>| -> Request<RequestBody> {
                    begun.begin(request.version());
                    let mut request = request.map(request_body);
                    request.extensions_mut().insert(RemoteAddr(peer));
                    if let Some(certificate) = &certificate {
                        request.extensions_mut().insert(certificate.clone());
                    }
                    request
                })
                .map_response(move |mut response: Response<ResponseBody>| {
                    // HTTP/2 has no `Connection` header: a drain ends it with
                    // GOAWAY instead (below).
                    if shared.draining() && !activity.current().http2 {
                        // hyper closes the connection once this is sent.
                        response
                            .headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    let done = RequestDone(activity.clone());
                    response.map(|body| TrackedBody { body, _done: done })
                })
        };
        let streams = StreamExecutor::new(limits.http2_stream_tasks);
        let mut builder = auto::Builder::new(streams.clone());
        if !limits.http2 {
            builder = builder.http1_only();
        }
        builder
            .http2()
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
        let connection =
            builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let mut connection = std::pin::pin!(connection);
        let mut running = FuturesUnordered::new();
        let mut going_away = false;
        let self_wake = SelfWake::new();
        loop {
            tokio::select! {
                ended = poll_fn(|cx| {
                    self_wake.drive(cx, |inner| {
                        streams.drive(connection.as_mut(), &mut running, inner)
                    })
                }) => {
                    if let Err(err) = ended {
                        tracing::debug!(%err, %peer, "connection ended with an error");
                    }
                    return;
                }
                // The socket looks at the shared state when hyper next polls it;
                // an HTTP/2 connection is told to finish its streams and close.
                Ok(()) = woken.changed() => {
                    if shared.draining() && !going_away && activity.current().http2 {
                        going_away = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// The requests of one connection, from their call to the end of their
/// response.
#[derive(Debug)]
struct Activity(Mutex<Requests>);

#[derive(Debug, Clone, Copy)]
struct Requests {
    /// Called and not yet fully answered.
    open: usize,
    /// Fully answered so far.
    answered: u64,
    /// When the last answer ended.
    answered_at: Instant,
    /// The connection speaks HTTP/2.
    http2: bool,
}

impl Activity {
    fn new() -> Self {
        Self(Mutex::new(Requests {
            open: 0,
            answered: 0,
            answered_at: Instant::now(),
            http2: false,
        }))
    }

    fn current(&self) -> Requests {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn begin(&self, version: Version) {
        let mut requests = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        requests.open += 1;
        requests.http2 |= version == Version::HTTP_2;
    }

    fn end(&self) {
        let mut requests = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        requests.open = requests.open.saturating_sub(1);
        requests.answered += 1;
        requests.answered_at = Instant::now();
    }
}

/// Ends a request's activity when its response body is dropped.
struct RequestDone(Arc<Activity>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that marks its request done when it is dropped.
struct TrackedBody {
    body: ResponseBody,
    _done: RequestDone,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

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
struct Socket {
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
    fn new(
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
