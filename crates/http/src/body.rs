//! The request and response body types and small response builders.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Errors of request bodies, whatever server produced them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request body could not be read, as the server hosting the
/// service reported it.
#[derive(Debug)]
pub struct BodyError(BoxError);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The body of a request as the layers see it. Requests are boxed into it
/// on the way in, so one service stack serves hyper's `Incoming`, axum's
/// `Body`, or any other [`Body`] type ([`HttpServer::service`](crate::HttpServer::service)).
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

/// Boxes any request body into a [`RequestBody`]; chunks that already are
/// [`Bytes`] pass through without a copy.
pub(crate) fn request_body<B>(body: B) -> RequestBody
where
    B: Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    body.map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
        .map_err(|err| BodyError(err.into()))
        .boxed_unsync()
}

/// Media type of every vgi-rpc request and response body.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Body of every response the server sends: either complete in memory, or
/// produced chunk by chunk (compressed responses) so that a response never
/// needs a second full-size copy.
#[derive(Debug)]
pub struct ResponseBody(Inner);

#[derive(Debug)]
enum Inner {
    Full(Option<Bytes>),
    /// Pieces in memory, some of them a batch's own Arrow buffers.
    Pieces(VecDeque<Bytes>),
    Chunks(mpsc::Receiver<Bytes>),
}

impl ResponseBody {
    /// A complete body, for responses of one's own layers
    /// (see [`HttpServer::layer`](crate::HttpServer::layer)).
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        ResponseBody(Inner::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// A complete body held in pieces, sent one after another.
    pub(crate) fn pieces(pieces: Vec<Bytes>) -> Self {
        let mut pieces = VecDeque::from(pieces);
        pieces.retain(|piece| !piece.is_empty());
        match pieces.len() {
            0 | 1 => Self::full(pieces.pop_front().unwrap_or_default()),
            _ => ResponseBody(Inner::Pieces(pieces)),
        }
    }

    /// A body whose chunks arrive on `chunks`; it ends when the sender is dropped.
    pub(crate) fn chunks(chunks: mpsc::Receiver<Bytes>) -> Self {
        ResponseBody(Inner::Chunks(chunks))
    }

    /// The whole body in one piece (joined if it is held in several), if
    /// it is complete in memory.
    pub(crate) fn take_full(&mut self) -> Option<Bytes> {
        self.take_pieces().map(joined)
    }

    /// The whole body as the pieces it is held in, if it is complete in
    /// memory: what a layer takes to look at a body without joining it.
    pub(crate) fn take_pieces(&mut self) -> Option<Vec<Bytes>> {
        match &mut self.0 {
            Inner::Full(bytes) => Some(bytes.take().into_iter().collect()),
            Inner::Pieces(pieces) => Some(std::mem::take(pieces).into()),
            Inner::Chunks(_) => None,
        }
    }
}

/// `pieces` in one piece, copied only when there are several.
pub(crate) fn joined(mut pieces: Vec<Bytes>) -> Bytes {
    match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.pop().expect("one piece"),
        _ => Bytes::from(pieces.concat()),
    }
}

/// The empty body, for answers without one (a CORS preflight).
impl Default for ResponseBody {
    fn default() -> Self {
        ResponseBody(Inner::Full(None))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Pieces(pieces) => Poll::Ready(pieces.pop_front().map(|b| Ok(Frame::data(b)))),
            Inner::Chunks(chunks) => chunks.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Pieces(pieces) => pieces.is_empty(),
            Inner::Chunks(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Pieces(pieces) => {
                SizeHint::with_exact(pieces.iter().map(|b| b.len() as u64).sum())
            }
            Inner::Chunks(_) => SizeHint::default(),
        }
    }
}

/// A response with `status`, `content_type` and `body`.
pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A plain-text response, for failures that happen before any Arrow schema
/// is known (authentication, body limits, unknown routes).
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response<ResponseBody> {
    response(status, "text/plain; charset=utf-8", message.into())
}

/// `response`, marked to close the connection: for answers given before
/// the request body was read whole, whose rest only a closed connection
/// tells apart from the next request. hyper may otherwise keep the
/// connection open, then close it when the rest does not arrive in time,
/// under a client that was told it could send its next request.
pub(crate) fn closing(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
