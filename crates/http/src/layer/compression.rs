//! zstd bodies both ways: a `Content-Encoding: zstd` request is decoded
//! as a stream under the decompressed-size cap (a body that expands past
//! it is answered `413` once the output passes the cap, so a small frame
//! claiming gigabytes costs about the cap at most), and an Arrow response
//! is compressed for clients whose `Accept-Encoding` names zstd.
//!
//! A large response is compressed while it is sent, in chunks, on a
//! blocking thread: memory stays at about one uncompressed body plus a few
//! chunks, instead of the body, its compressed copy and a joined buffer.
//! Bodies of up to [`INLINE_LIMIT`] bytes — nearly every unary call — are
//! handled in place with a zstd context kept per thread, because creating
//! a context and handing work to another thread cost more than the small
//! body itself. Either way the frame header records the uncompressed
//! size, which eager decoders need. A body that zstd cannot pay for goes
//! out as it is: one below [`SMALL_BODY`] without an attempt, one of up to
//! [`INLINE_LIMIT`] after the attempt, a larger one when samples of it do
//! not shrink by a tenth (see [`worth_compressing_pieces`]). A large body
//! that goes as it is keeps the pieces it is held in, a batch's own Arrow
//! buffers among them.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io::Write;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, VARY,
};
use http::{Request, Response, StatusCode};
use tokio::sync::mpsc;
use tower::{Layer, Service};
use vgirpc_fetch::{SMALL_BODY, worth_compressing_pieces};

use super::{BoxFuture, take};
use crate::blocking;
use crate::body::{self, ARROW_STREAM, ResponseBody};
use crate::decompress::{DecompressError, decompress};

/// The only codec offered (`VGI-Supported-Encodings`).
pub(crate) const ZSTD: &str = "zstd";
/// Size of the compressed chunks handed to the connection.
const CHUNK: usize = 64 * 1024;
/// Compressed chunks buffered ahead of a slow client.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Bodies up to this size are (de)compressed in place, on the request's
/// own thread.
const INLINE_LIMIT: usize = 64 * 1024;
/// A request body is decompressed in place only if it also expands to no
/// more than this: a small frame can declare gigabytes, and decompressing
/// those would hold the thread's other connections.
const INLINE_DECOMPRESSED_LIMIT: usize = 16 * INLINE_LIMIT;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct CompressionLayer {
    /// zstd level for responses; `None` sends them uncompressed.
    level: Option<i32>,
    /// Largest decompressed request body accepted.
    max_decompressed: usize,
}

impl CompressionLayer {
    pub(crate) fn new(level: Option<i32>, max_decompressed: usize) -> Self {
        Self {
            level,
            max_decompressed,
        }
    }
}

impl<S> Layer<S> for CompressionLayer {
    type Service = CompressionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CompressionService {
            inner,
            layer: *self,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompressionService<S> {
    inner: S,
    layer: CompressionLayer,
}

impl<S> Service<Request<Bytes>> for CompressionService<S>
where
    S: Service<Request<Bytes>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let level = self
            .layer
            .level
            .filter(|_| accepts_zstd(request.headers().get(ACCEPT_ENCODING)));
        let limit = self.layer.max_decompressed;
        let mut inner = take(&mut self.inner);
        Box::pin(async move {
            let request = match decode(request, limit).await {
                Ok(request) => request,
                Err(response) => return Ok(*response),
            };
            let response = inner.call(request).await?;
            Ok(match level {
                Some(level) => encode(response, level),
                None => response,
            })
        })
    }
}

/// Whether an `Accept-Encoding` list names zstd (quality values are not
/// weighed: zstd is the only codec on offer).
fn accepts_zstd(header: Option<&HeaderValue>) -> bool {
    header.and_then(|v| v.to_str().ok()).is_some_and(|list| {
        list.split(',')
            .map(|token| token.split(';').next().unwrap_or("").trim())
            .any(|token| token.eq_ignore_ascii_case(ZSTD))
    })
}

/// Decodes the request body as its `Content-Encoding` says; decompressing
/// runs on a blocking thread, as a large body takes a while.
async fn decode(
    request: Request<Bytes>,
    limit: usize,
) -> Result<Request<Bytes>, Box<Response<ResponseBody>>> {
    let encoding = request
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(request),
        ZSTD => {
            let (mut parts, compressed) = request.into_parts();
            let plain = if compressed.len() <= INLINE_LIMIT
                && let Some(size) = small_frame_size(&compressed, limit)
            {
                decompress_small(&compressed, size)
                    .map_err(|err| DecompressError::Invalid(err.to_string()))
            } else {
                blocking::run(move || decompress(&compressed, limit))
                    .await
                    .unwrap_or_else(|panicked| Err(DecompressError::Invalid(panicked.to_string())))
            };
            let plain = plain.map_err(|err| {
                Box::new(match err {
                    DecompressError::TooLarge { limit } => body::text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "The zstd request body decompresses to more than {limit} bytes, \
                             the server's max_decompressed_bytes."
                        ),
                    ),
                    DecompressError::NoMemory => body::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The server cannot hold this request body now.",
                    ),
                    DecompressError::Invalid(reason) => body::text(
                        StatusCode::BAD_REQUEST,
                        format!("Failed to decompress zstd request body: {reason}"),
                    ),
                })
            })?;
            parts.headers.remove(CONTENT_ENCODING);
            parts.headers.remove(CONTENT_LENGTH);
            Ok(Request::from_parts(parts, Bytes::from(plain)))
        }
        other => Err(Box::new(body::text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Encoding '{other}' is not supported by this server; supported: {ZSTD}"
            ),
        ))),
    }
}

fn encode(mut response: Response<ResponseBody>, level: i32) -> Response<ResponseBody> {
    let is_arrow = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == ARROW_STREAM.as_bytes());
    if !is_arrow {
        return response;
    }
    // Taken as it is held: a large answer's pieces include a batch's own
    // Arrow buffers, which are joined only if they are compressed.
    let Some(pieces) = response.body_mut().take_pieces() else {
        return response;
    };
    let len: usize = pieces.iter().map(Bytes::len).sum();
    // The answer depends on Accept-Encoding whether or not it is
    // compressed in the end.
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("accept-encoding"));
    if len < SMALL_BODY {
        *response.body_mut() = ResponseBody::pieces(pieces);
        return response;
    }
    if len <= INLINE_LIMIT {
        let plain = body::joined(pieces);
        match compress_small(&plain, level) {
            Ok(compressed) if compressed.len() < plain.len() => {
                *response.body_mut() = ResponseBody::full(compressed);
            }
            outcome => {
                // Sent as it is rather than not at all, or larger.
                if let Err(err) = outcome {
                    tracing::debug!(%err, "response compression failed");
                }
                *response.body_mut() = ResponseBody::full(plain);
                return response;
            }
        }
    } else if !worth_compressing_pieces(&pieces, |sample| {
        compress_small(sample, level).map(|out| out.len())
    })
    // Let the full compression report what goes wrong.
    .unwrap_or(true)
    {
        *response.body_mut() = ResponseBody::pieces(pieces);
        return response;
    } else {
        let (sender, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
        tokio::task::spawn_blocking(move || {
            if let Err(err) = compress(&pieces, level, sender) {
                tracing::debug!(%err, "response compression stopped");
            }
        });
        *response.body_mut() = ResponseBody::chunks(chunks);
    }
    let headers = response.headers_mut();
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(ZSTD));
    response
}

/// The decompressed size of a body that is one frame declaring it, if it
/// is within `limit` and small enough to decompress in place; `None` sends
/// the body down the streaming path, which also handles several frames and
/// produces the error for one beyond the limit.
fn small_frame_size(compressed: &[u8], limit: usize) -> Option<usize> {
    let frame = zstd::zstd_safe::find_frame_compressed_size(compressed).ok()?;
    if frame != compressed.len() {
        return None;
    }
    let size = zstd::zstd_safe::get_frame_content_size(compressed).ok()??;
    usize::try_from(size)
        .ok()
        .filter(|&size| size <= limit.min(INLINE_DECOMPRESSED_LIMIT))
}

fn decompress_small(compressed: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(decompressor) => decompressor,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        let plain = decompressor.decompress(compressed, size)?;
        if plain.len() != size {
            return Err(std::io::Error::other(format!(
                "the zstd frame declares {size} bytes but holds {}",
                plain.len()
            )));
        }
        Ok(plain)
    })
}

/// One frame, with the content size in its header (the bulk API knows the
/// whole input, so it always records it).
fn compress_small(plain: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(kept, _)| *kept != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, compressor) = slot.as_mut().expect("set just above");
        compressor.compress(plain)
    })
}

/// `pieces` as one zstd frame sent in chunks.
fn compress(pieces: &[Bytes], level: i32, sender: mpsc::Sender<Bytes>) -> std::io::Result<()> {
    let len: usize = pieces.iter().map(Bytes::len).sum();
    let sink = ChunkSink {
        sender,
        buffer: Vec::with_capacity(CHUNK),
    };
    let mut encoder = zstd::stream::write::Encoder::new(sink, level)?;
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(len as u64))?;
    for chunk in pieces.iter().flat_map(|piece| piece.chunks(CHUNK)) {
        encoder.write_all(chunk)?;
    }
    encoder.finish()?.send()
}

/// Hands compressed output to the response body in `CHUNK`-sized pieces.
struct ChunkSink {
    sender: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

impl ChunkSink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.sender.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use vgirpc_test_support::noise;

    use super::*;

    #[test]
    fn accept_encoding_lists_are_parsed() {
        let check = |v: &str| accepts_zstd(Some(&HeaderValue::from_str(v).unwrap()));
        assert!(check("zstd, gzip"));
        assert!(check("gzip;q=1.0, ZSTD;q=0.5"));
        assert!(!check("gzip, br"));
        assert!(!accepts_zstd(None));
    }

    #[test]
    fn small_bodies_round_trip_through_the_kept_contexts() {
        let plain: Vec<u8> = (0..5_000u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        for level in [3, 1, 3] {
            let compressed = compress_small(&plain, level).unwrap();
            let size = small_frame_size(&compressed, plain.len()).expect("size is declared");
            assert_eq!(size, plain.len());
            assert_eq!(decompress_small(&compressed, size).unwrap(), plain);
        }
    }

    #[test]
    fn small_bodies_beyond_the_limit_or_broken_take_the_checked_path() {
        let plain = vec![9u8; 4096];
        let compressed = compress_small(&plain, 3).unwrap();
        assert_eq!(small_frame_size(&compressed, plain.len() - 1), None);
        assert!(decompress(&compressed, plain.len() - 1).is_err());
        let truncated = &compressed[..compressed.len() - 3];
        assert_eq!(small_frame_size(truncated, plain.len()), None);
        assert!(decompress(truncated, plain.len()).is_err());
        let expanding = compress_small(&vec![0u8; INLINE_DECOMPRESSED_LIMIT + 1], 3).unwrap();
        assert!(expanding.len() <= INLINE_LIMIT);
        assert_eq!(small_frame_size(&expanding, usize::MAX), None);
        let mut two_frames = compressed.clone();
        two_frames.extend_from_slice(&compressed);
        assert_eq!(small_frame_size(&two_frames, usize::MAX), None);
        assert_eq!(decompress(&two_frames, usize::MAX).unwrap().len(), 8192);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn compressed_frames_carry_the_content_size() {
        let plain: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (sender, mut chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
        // In uneven pieces, as a batch's buffers are held.
        let input: Vec<Bytes> = [0, 7, 70_000, 500_001, plain.len()]
            .windows(2)
            .map(|w| Bytes::copy_from_slice(&plain[w[0]..w[1]]))
            .collect();
        let task = tokio::task::spawn_blocking(move || compress(&input, 3, sender));
        let mut compressed = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            assert!(chunk.len() <= CHUNK + 128 * 1024);
            compressed.extend_from_slice(&chunk);
        }
        task.await.unwrap().unwrap();
        let size = zstd::zstd_safe::get_frame_content_size(&compressed).unwrap();
        assert_eq!(size, Some(plain.len() as u64));
        assert_eq!(decompress(&compressed, plain.len()).unwrap(), plain);
        assert!(decompress(&compressed, plain.len() - 1).is_err());
    }

    #[tokio::test]
    async fn a_large_answer_zstd_cannot_shrink_goes_in_its_own_pieces() {
        use http_body_util::BodyExt as _;

        let pieces: Vec<Bytes> = [100, 300 * 1024, 200 * 1024]
            .map(|len| Bytes::from(noise(len)))
            .into();
        let response = Response::builder()
            .header(CONTENT_TYPE, ARROW_STREAM)
            .body(ResponseBody::pieces(pieces.clone()))
            .unwrap();
        let mut sent = encode(response, 3);
        assert_eq!(sent.headers().get(CONTENT_ENCODING), None);
        let mut frames = Vec::new();
        while let Some(frame) = sent.body_mut().frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames.len(), pieces.len());
        for (frame, piece) in frames.iter().zip(&pieces) {
            assert_eq!(frame.as_ptr(), piece.as_ptr(), "sent as held, not copied");
            assert_eq!(frame.len(), piece.len());
        }
    }
}
