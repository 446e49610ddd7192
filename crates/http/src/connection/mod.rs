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

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

mod h2_streams;
mod self_wake;
mod socket;

use h2_streams::StreamExecutor;
use self_wake::SelfWake;
use socket::Socket;

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
