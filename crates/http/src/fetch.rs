//! Fetching externalized objects the way the reference does: a `HEAD` for
//! the size, then one `GET` for small objects, or parallel `Range` `GET`s
//! for large ones, hedging chunks that straggle, with retries on server
//! errors, an overall deadline and a size cap.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE};
use http::{HeaderMap, Method, StatusCode};

use crate::decompress::decompress;
use crate::error::HttpError;
use crate::outgoing::{self, Reply};

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
    /// answered 5xx (3), after `retry_backoff`, doubled each time (250 ms).
    pub retries: u32,
    /// The first pause before a retry.
    pub retry_backoff: Duration,
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
        }
    }
}

/// What one range request delivered, or why it failed.
struct ChunkDone {
    index: usize,
    result: Result<Bytes, HttpError>,
    elapsed: Duration,
}

impl FetchConfig {
    /// The defaults with chunks of `chunk` bytes above `threshold`.
    pub fn with_chunks(mut self, threshold: usize, chunk: usize) -> Self {
        self.parallel_threshold_bytes = threshold;
        self.chunk_size_bytes = chunk.max(1);
        self
    }

    /// Fetches `url` (`http://` or `https://`), decoded per its
    /// `Content-Encoding` (zstd or none).
    ///
    /// # Errors
    ///
    /// [`HttpError::Outgoing`] naming the cause: a refusal (with the
    /// store's error code when it sends one), a `Content-Length` above
    /// [`max_fetch_bytes`](Self::max_fetch_bytes), a truncated or
    /// mismatched range, the deadline, an unknown encoding.
    pub fn fetch(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        let deadline = Instant::now() + self.timeout;
        // A HEAD that fails (a URL signed for GET only, say) just means
        // the single GET, which retries and reports any real refusal itself.
        let head = outgoing::send(Method::HEAD, url, &[], Bytes::new(), 0).ok();
        let length = head
            .as_ref()
            .filter(|r| r.status.is_success())
            .and_then(|r| header_number(&r.headers, CONTENT_LENGTH));
        if let Some(length) = length
            && length > self.max_fetch_bytes
        {
            return Err(HttpError::outgoing(
                url,
                format!(
                    "Content-Length {length} is above the fetch cap of {} bytes",
                    self.max_fetch_bytes
                ),
            ));
        }
        let ranged = head.as_ref().is_some_and(|r| {
            r.headers
                .get(ACCEPT_RANGES)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"))
        });
        let (headers, body) = match length {
            Some(length) if ranged && length >= self.parallel_threshold_bytes => {
                let headers = head.map(|r| r.headers).unwrap_or_default();
                (headers, self.fetch_chunks(url, length, deadline)?)
            }
            _ => {
                let reply =
                    self.send_retrying(Method::GET, url, &[], self.max_fetch_bytes, deadline)?;
                if !reply.status.is_success() {
                    return Err(refusal(url, &reply));
                }
                if let Some(expected) = length.filter(|_| head.is_some())
                    && expected != reply.body.len()
                {
                    return Err(HttpError::outgoing(
                        url,
                        format!("truncated body: {} of {expected} bytes", reply.body.len()),
                    ));
                }
                (reply.headers, reply.body.to_vec())
            }
        };
        self.decode(url, &headers, body)
    }

    fn decode(&self, url: &str, headers: &HeaderMap, body: Vec<u8>) -> Result<Vec<u8>, HttpError> {
        let encoding = headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match encoding.as_str() {
            "" | "identity" => Ok(body),
            "zstd" => decompress(&body, self.max_fetch_bytes)
                .map_err(|e| HttpError::outgoing(url, format!("cannot decompress: {e}"))),
            other => Err(HttpError::outgoing(
                url,
                format!("unsupported Content-Encoding {other:?}"),
            )),
        }
    }

    /// The object in `chunk_size_bytes` ranges, `max_parallel_requests` at
    /// a time, hedging stragglers once two chunks have told how long a
    /// chunk takes.
    fn fetch_chunks(
        &self,
        url: &str,
        length: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, HttpError> {
        let chunk = self.chunk_size_bytes;
        let count = length.div_ceil(chunk);
        let (tx, rx) = mpsc::channel::<ChunkDone>();
        let mut parts: Vec<Option<Bytes>> = vec![None; count];
        let mut started: Vec<Option<Instant>> = vec![None; count];
        let mut hedged = vec![false; count];
        let mut outstanding = vec![0usize; count];
        let mut hedges = 0;
        let mut times: Vec<Duration> = Vec::new();
        let mut next = 0;
        let mut in_flight = 0;
        let mut done = 0;
        let launch = |index: usize| {
            let tx = tx.clone();
            let url = url.to_owned();
            let config = self.clone();
            let start = index * chunk;
            let end = (start + chunk).min(length);
            thread::spawn(move || {
                let begun = Instant::now();
                let result = config.fetch_range(&url, start, end, deadline);
                // The receiver is gone once the fetch has ended, which a
                // losing hedge may outlive.
                let _ = tx.send(ChunkDone {
                    index,
                    result,
                    elapsed: begun.elapsed(),
                });
            });
        };
        while done < count {
            while in_flight < self.max_parallel_requests.max(1) && next < count {
                launch(next);
                outstanding[next] += 1;
                started[next] = Some(Instant::now());
                next += 1;
                in_flight += 1;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HttpError::outgoing(
                    url,
                    format!("timed out after {:?}", self.timeout),
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(20));
            match rx.recv_timeout(wait) {
                Ok(ChunkDone {
                    index,
                    result,
                    elapsed,
                }) => {
                    outstanding[index] -= 1;
                    if parts[index].is_some() {
                        continue;
                    }
                    match result {
                        Ok(bytes) => {
                            parts[index] = Some(bytes);
                            times.push(elapsed);
                            done += 1;
                            in_flight -= 1;
                        }
                        // The chunk's other request may still deliver it.
                        Err(_) if outstanding[index] > 0 => {}
                        Err(error) => return Err(error),
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(HttpError::outgoing(url, "the range requests stopped"));
                }
            }
            if self.speculative_retry_multiplier > 0.0 && times.len() >= 2 {
                let limit = median(&mut times).mul_f64(self.speculative_retry_multiplier);
                for index in 0..next {
                    if self.max_speculative_hedges > 0 && hedges >= self.max_speculative_hedges {
                        break;
                    }
                    let slow = started[index].is_some_and(|t| t.elapsed() > limit);
                    if parts[index].is_none() && !hedged[index] && slow {
                        hedged[index] = true;
                        hedges += 1;
                        outstanding[index] += 1;
                        launch(index);
                    }
                }
            }
        }
        let mut body = Vec::with_capacity(length);
        for part in parts.into_iter().flatten() {
            body.extend_from_slice(&part);
        }
        Ok(body)
    }

    fn fetch_range(
        &self,
        url: &str,
        start: usize,
        end: usize,
        deadline: Instant,
    ) -> Result<Bytes, HttpError> {
        let range = format!("bytes={start}-{}", end - 1);
        let reply = self.send_retrying(
            Method::GET,
            url,
            &[("range", &range)],
            end - start,
            deadline,
        )?;
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
            return Err(HttpError::outgoing(
                url,
                format!(
                    "range {range} answered {} bytes for another range or a truncated body",
                    reply.body.len()
                ),
            ));
        }
        Ok(reply.body)
    }

    /// One request, retried with doubling pauses while it cannot connect,
    /// times out or is answered 5xx, as long as the deadline allows.
    fn send_retrying(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        max_body: usize,
        deadline: Instant,
    ) -> Result<Reply, HttpError> {
        let mut pause = self.retry_backoff;
        let mut attempt = 0;
        loop {
            let outcome = outgoing::send(method.clone(), url, headers, Bytes::new(), max_body);
            let transient = match &outcome {
                Ok(reply) => reply.status.is_server_error(),
                Err(HttpError::Outgoing { reason, .. }) => {
                    !reason.contains("exceeds") && !reason.contains("invalid")
                }
                Err(_) => false,
            };
            if !transient || attempt >= self.retries || Instant::now() + pause >= deadline {
                return outcome;
            }
            thread::sleep(pause);
            pause *= 2;
            attempt += 1;
        }
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn header_number(headers: &HeaderMap, name: http::HeaderName) -> Option<usize> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A non-success answer, with the store's error code and message when the
/// body is S3-style XML.
pub(crate) fn refusal(url: &str, reply: &Reply) -> HttpError {
    HttpError::outgoing(
        url,
        format!(
            "server answered {}{}",
            reply.status,
            store_error_detail(&reply.body)
        ),
    )
}

/// ` (Code: Message)` from an S3-style XML error body, or nothing.
fn store_error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let element = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_owned())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_error_detail_names_code_and_message() {
        let body = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        assert_eq!(
            store_error_detail(body),
            " (NoSuchKey: The specified key does not exist.)"
        );
        assert_eq!(store_error_detail(b"not found"), "");
    }

    #[test]
    fn defaults_are_the_references() {
        let config = FetchConfig::default();
        assert_eq!(config.parallel_threshold_bytes, 64 * 1024 * 1024);
        assert_eq!(config.chunk_size_bytes, 8 * 1024 * 1024);
        assert_eq!(config.max_parallel_requests, 8);
        assert_eq!(config.timeout, Duration::from_secs(60));
        assert_eq!(config.max_fetch_bytes, 256 * 1024 * 1024);
        assert_eq!(config.max_speculative_hedges, 4);
    }
}
