//! Fetching externalized objects the way the reference does: a `HEAD` for
//! the size, then one `GET` for small objects, or parallel `Range` `GET`s
//! for large ones, hedging chunks that straggle, with retries on server
//! errors and timeouts, an overall deadline and a size cap.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE};
use http::{HeaderMap, Method, StatusCode};
use tokio::task::JoinSet;

use crate::FetchError;
use crate::error::shown;
use crate::location::is_under;
use crate::outgoing::{self, Outgoing, Reply, refusal};
use crate::presigned::{self, is_presigned};

/// The largest zstd window accepted (log2): 8 MiB, what compression levels
/// up to 19 use; a larger one would let a frame cost well over the cap.
const MAX_WINDOW_LOG: u32 = 23;

/// How often the range loop looks for stragglers to hedge.
const HEDGE_CHECK: Duration = Duration::from_millis(20);

/// How objects are fetched; the defaults are the reference's `FetchConfig`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchConfig {
    /// Objects smaller than this come in one `GET` (64 MiB).
    pub parallel_threshold_bytes: usize,
    /// The size of each `Range` request above the threshold (8 MiB).
    pub chunk_size_bytes: usize,
    /// Range requests in flight at once, hedges aside (8).
    pub max_parallel_requests: usize,
    /// The deadline of the whole fetch (60 s).
    pub timeout: Duration,
    /// The largest object fetched, and the largest it may decompress to
    /// (256 MiB).
    pub max_fetch_bytes: usize,
    /// A chunk still in flight after this many times the median chunk's
    /// time is requested again, and the first answer wins (2.0; 0 turns
    /// hedging off).
    pub speculative_retry_multiplier: f64,
    /// Hedge requests per fetch at most (4; 0 for no limit but the
    /// number of chunks).
    pub max_speculative_hedges: usize,
    /// Retries of a request that failed to connect, timed out or was
    /// answered 5xx (3), after `retry_backoff`, doubled each time.
    pub retries: u32,
    /// The first pause before a retry (250 ms).
    pub retry_backoff: Duration,
    /// When not empty, only URLs under one of these locations (scheme,
    /// host, port and path prefix, as [`is_under`] reads them) are
    /// fetched; empty, any `http://` or `https://` URL is.
    pub allowed_locations: Vec<String>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            parallel_threshold_bytes: 64 << 20,
            chunk_size_bytes: 8 << 20,
            max_parallel_requests: 8,
            timeout: Duration::from_secs(60),
            max_fetch_bytes: 256 << 20,
            speculative_retry_multiplier: 2.0,
            max_speculative_hedges: 4,
            retries: 3,
            retry_backoff: Duration::from_millis(250),
            allowed_locations: Vec::new(),
        }
    }
}

impl FetchConfig {
    /// These settings with chunks of `chunk` bytes above `threshold`.
    pub fn with_chunks(mut self, threshold: usize, chunk: usize) -> Self {
        self.parallel_threshold_bytes = threshold;
        self.chunk_size_bytes = chunk.max(1);
        self
    }

    /// These settings fetching only under `locations` (see
    /// [`allowed_locations`](Self::allowed_locations)).
    pub fn with_allowed_locations<I, S>(mut self, locations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_locations = locations.into_iter().map(Into::into).collect();
        self
    }

    /// [`Fetcher::fetch`] with these settings and [`Outgoing::system`],
    /// for blocking code (see [`block_on`](crate::block_on)).
    ///
    /// # Errors
    ///
    /// As [`Fetcher::fetch`].
    pub fn fetch_blocking(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let fetcher = Fetcher::new(self.clone(), Outgoing::system().clone());
        outgoing::block_on(fetcher.fetch(url))
    }
}

/// A [`FetchConfig`] and the client it fetches with.
#[derive(Debug, Clone)]
pub struct Fetcher {
    config: FetchConfig,
    outgoing: Outgoing,
}

/// What a probe learnt of an object.
struct Probe {
    length: Option<usize>,
    ranged: bool,
    /// Its `Content-Encoding` among them.
    headers: HeaderMap,
}

/// What one range request delivered, or why it failed.
type ChunkDone = (usize, Result<Bytes, FetchError>, Duration);

impl Fetcher {
    /// Fetches with `config` through `outgoing`.
    pub fn new(config: FetchConfig, outgoing: Outgoing) -> Self {
        Self { config, outgoing }
    }

    /// The settings.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// The client the fetches go through, for other requests to the same
    /// stores (uploads).
    pub fn outgoing(&self) -> &Outgoing {
        &self.outgoing
    }

    /// Fetches `url` (`http://` or `https://`), decoded per its
    /// `Content-Encoding` (zstd or none).
    ///
    /// # Errors
    ///
    /// A URL outside the allowed locations, a refusal (with the store's
    /// error code when it sends one), a `Content-Length` above
    /// [`max_fetch_bytes`](FetchConfig::max_fetch_bytes), a truncated or
    /// mismatched range, the deadline, an unknown encoding; failures to
    /// connect, timeouts and 5xx only once the retries are spent.
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let config = &self.config;
        if !config.allowed_locations.is_empty()
            && !config.allowed_locations.iter().any(|l| is_under(url, l))
        {
            return Err(FetchError::NotAllowed {
                url: shown(url),
                reason: "not in an allowed storage location".into(),
            });
        }
        if let Some(expired) = presigned::expiry(url).filter(|at| *at <= SystemTime::now()) {
            return Err(FetchError::Expired {
                url: shown(url),
                ago: SystemTime::now()
                    .duration_since(expired)
                    .unwrap_or_default()
                    .as_secs(),
            });
        }
        let deadline = Instant::now() + config.timeout;
        let probe = self.probe(url, deadline).await;
        let length = probe.as_ref().and_then(|p| p.length);
        if let Some(length) = length.filter(|n| *n > config.max_fetch_bytes) {
            return Err(FetchError::TooLarge {
                url: shown(url),
                what: format!("Content-Length {length}"),
                cap: config.max_fetch_bytes,
            });
        }
        let ranged = probe.as_ref().is_some_and(|p| p.ranged);
        let (headers, body) = match length {
            Some(length) if ranged && length >= config.parallel_threshold_bytes => {
                let headers = probe.map(|p| p.headers).unwrap_or_default();
                (headers, self.fetch_chunks(url, length, deadline).await?)
            }
            _ => {
                let reply = self
                    .send_retrying(url, &[], config.max_fetch_bytes, deadline)
                    .await?;
                if !reply.status.is_success() {
                    return Err(refusal(url, &reply));
                }
                if let Some(expected) = length
                    && expected != reply.body.len()
                {
                    return Err(FetchError::Truncated {
                        url: shown(url),
                        detail: format!("{} of {expected} bytes", reply.body.len()),
                    });
                }
                (reply.headers, reply.body.to_vec())
            }
        };
        decode(url, &headers, body, config.max_fetch_bytes)
    }

    /// The object's size and whether it can be fetched in ranges: a
    /// `HEAD`, or for a pre-signed URL (signed for `GET` alone) a `GET` of
    /// its first byte, as the reference probes. A probe that fails just
    /// means the single `GET`, which retries and reports any real refusal.
    async fn probe(&self, url: &str, deadline: Instant) -> Option<Probe> {
        if !is_presigned(url) {
            let head = self.send_once(Method::HEAD, url, &[], 0, deadline).await;
            let head = head.ok().filter(|r| r.status.is_success())?;
            let ranged = head
                .headers
                .get(ACCEPT_RANGES)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"));
            return Some(Probe {
                length: header_number(&head.headers, CONTENT_LENGTH),
                ranged,
                headers: head.headers,
            });
        }
        // A store that ignores the range sends the whole object, which the
        // one-byte cap refuses; the single GET then fetches it.
        let first = self
            .send_once(Method::GET, url, &[("range", "bytes=0-0")], 1, deadline)
            .await
            .ok()
            .filter(|r| r.status == StatusCode::PARTIAL_CONTENT)?;
        let total = first.headers.get(CONTENT_RANGE).and_then(|v| {
            v.to_str()
                .ok()?
                .strip_prefix("bytes 0-0/")?
                .trim()
                .parse()
                .ok()
        });
        Some(Probe {
            length: total,
            ranged: total.is_some(),
            headers: first.headers,
        })
    }

    /// The object in `chunk_size_bytes` ranges, `max_parallel_requests` at
    /// a time, hedging stragglers once two chunks have told how long a
    /// chunk takes. A losing request is aborted when the fetch ends.
    async fn fetch_chunks(
        &self,
        url: &str,
        length: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, FetchError> {
        let config = &self.config;
        let chunk = config.chunk_size_bytes;
        let count = length.div_ceil(chunk);
        let mut tasks: JoinSet<ChunkDone> = JoinSet::new();
        // Chunks join the body as soon as every chunk before them has, and
        // are dropped then, so each byte received is held once: in the
        // body or in a chunk waiting for its predecessors. The body's
        // reservation is not touched before bytes arrive to fill it.
        let mut body = Vec::with_capacity(length);
        let mut waiting: Vec<Option<Bytes>> = vec![None; count];
        let mut joined = 0;
        let mut received = vec![false; count];
        let mut started: Vec<Option<Instant>> = vec![None; count];
        let mut hedged = vec![false; count];
        let mut outstanding = vec![0usize; count];
        let mut hedges = 0;
        let mut times: Vec<Duration> = Vec::new();
        let (mut next, mut in_flight, mut done) = (0, 0, 0);
        let launch = |tasks: &mut JoinSet<ChunkDone>, index: usize| {
            let fetcher = self.clone();
            let url = url.to_owned();
            let start = index * chunk;
            let end = (start + chunk).min(length);
            tasks.spawn(async move {
                let begun = Instant::now();
                let result = fetcher.fetch_range(&url, start, end, deadline).await;
                (index, result, begun.elapsed())
            });
        };
        while done < count {
            while in_flight < config.max_parallel_requests.max(1) && next < count {
                launch(&mut tasks, next);
                outstanding[next] += 1;
                started[next] = Some(Instant::now());
                next += 1;
                in_flight += 1;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(FetchError::Timeout {
                    url: shown(url),
                    after: config.timeout,
                });
            }
            let wait = (deadline - now).min(HEDGE_CHECK);
            match tokio::time::timeout(wait, tasks.join_next()).await {
                Ok(Some(Ok((index, result, elapsed)))) => {
                    outstanding[index] -= 1;
                    if received[index] {
                        continue;
                    }
                    match result {
                        Ok(bytes) => {
                            waiting[index] = Some(bytes);
                            received[index] = true;
                            while let Some(next) = waiting.get_mut(joined).and_then(Option::take) {
                                body.extend_from_slice(&next);
                                joined += 1;
                            }
                            times.push(elapsed);
                            done += 1;
                            in_flight -= 1;
                        }
                        // The chunk's other request may still deliver it.
                        Err(_) if outstanding[index] > 0 => {}
                        Err(error) => return Err(error),
                    }
                }
                Ok(Some(Err(join))) => {
                    return Err(FetchError::Transport {
                        url: shown(url),
                        reason: format!("a range request failed: {join}"),
                    });
                }
                Ok(None) | Err(_) => {}
            }
            if config.speculative_retry_multiplier > 0.0 && times.len() >= 2 {
                let limit = median(&mut times).mul_f64(config.speculative_retry_multiplier);
                for index in 0..next {
                    if config.max_speculative_hedges > 0 && hedges >= config.max_speculative_hedges
                    {
                        break;
                    }
                    let slow = started[index].is_some_and(|t| t.elapsed() > limit);
                    if !received[index] && !hedged[index] && slow {
                        hedged[index] = true;
                        hedges += 1;
                        outstanding[index] += 1;
                        launch(&mut tasks, index);
                    }
                }
            }
        }
        // Every chunk arrived, so every chunk joined, in order.
        debug_assert_eq!(body.len(), length);
        Ok(body)
    }

    async fn fetch_range(
        &self,
        url: &str,
        start: usize,
        end: usize,
        deadline: Instant,
    ) -> Result<Bytes, FetchError> {
        let range = format!("bytes={start}-{}", end - 1);
        let reply = self
            .send_retrying(url, &[("range", &range)], end - start, deadline)
            .await?;
        if reply.status != StatusCode::PARTIAL_CONTENT {
            return Err(refusal(url, &reply));
        }
        let expected = format!("bytes {start}-{}/", end - 1);
        let matches = reply
            .headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(&expected));
        if !matches || reply.body.len() != end - start {
            return Err(FetchError::Truncated {
                url: shown(url),
                detail: format!(
                    "range {range} answered {} bytes, or another range",
                    reply.body.len()
                ),
            });
        }
        Ok(reply.body)
    }

    /// One request within what is left of the deadline.
    async fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        max_body: usize,
        deadline: Instant,
    ) -> Result<Reply, FetchError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.outgoing
            .send(method, url, headers, Bytes::new(), max_body, left)
            .await
            .map_err(|error| match error {
                // The fetch's own deadline, not the request's, was what ran out.
                FetchError::Timeout { url, .. } => FetchError::Timeout {
                    url,
                    after: self.config.timeout,
                },
                other => other,
            })
    }

    /// A `GET`, retried with doubling pauses while it cannot connect,
    /// times out or is answered 5xx, as long as the deadline allows.
    async fn send_retrying(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        max_body: usize,
        deadline: Instant,
    ) -> Result<Reply, FetchError> {
        let mut pause = self.config.retry_backoff;
        let mut attempt = 0;
        loop {
            let outcome = self
                .send_once(Method::GET, url, headers, max_body, deadline)
                .await;
            let transient = match &outcome {
                Ok(reply) => reply.status.is_server_error(),
                Err(error) => error.is_transient(),
            };
            if !transient || attempt >= self.config.retries || Instant::now() + pause >= deadline {
                return outcome;
            }
            tracing::debug!(url = %shown(url), attempt, "retrying a fetch");
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }
}

/// The body decoded per its `Content-Encoding`, at most `limit` bytes.
fn decode(
    url: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let failed = |reason: String| FetchError::Encoding {
        url: shown(url),
        reason,
    };
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "zstd" => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(body.as_slice())
                .map_err(|e| failed(format!("cannot decompress: {e}")))?;
            decoder
                .window_log_max(MAX_WINDOW_LOG)
                .map_err(|e| failed(format!("cannot decompress: {e}")))?;
            let mut plain = Vec::new();
            // One byte past the limit tells "at the limit" from "beyond it".
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut plain)
                .map_err(|e| failed(format!("cannot decompress: {e}")))?;
            if plain.len() > limit {
                return Err(FetchError::TooLarge {
                    url: shown(url),
                    what: "the decompressed body".into(),
                    cap: limit,
                });
            }
            Ok(plain)
        }
        other => Err(failed(format!("unsupported Content-Encoding {other:?}"))),
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn header_number(headers: &HeaderMap, name: http::HeaderName) -> Option<usize> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_references() {
        let config = FetchConfig::default();
        assert_eq!(config.parallel_threshold_bytes, 64 * 1024 * 1024);
        assert_eq!(config.chunk_size_bytes, 8 * 1024 * 1024);
        assert_eq!(config.max_parallel_requests, 8);
        assert_eq!(config.timeout, Duration::from_secs(60));
        assert_eq!(config.max_fetch_bytes, 256 * 1024 * 1024);
        assert_eq!(config.speculative_retry_multiplier, 2.0);
        assert_eq!(config.max_speculative_hedges, 4);
    }

    #[test]
    fn zstd_is_decoded_within_the_cap() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "zstd".parse().unwrap());
        let packed = zstd::bulk::compress(&[7u8; 4096], 3).unwrap();
        let plain = decode("http://h/o?sig=1", &headers, packed.clone(), 4096).unwrap();
        assert_eq!(plain, vec![7u8; 4096]);
        let error = decode("http://h/o?sig=1", &headers, packed, 4095).unwrap_err();
        assert_eq!(
            error.to_string(),
            "http://h/o: the decompressed body is above the fetch cap of 4095 bytes"
        );
        headers.insert(CONTENT_ENCODING, "br".parse().unwrap());
        assert!(decode("http://h/o", &headers, vec![1], 10).is_err());
    }
}
