//! `FetchConfig::fetch_blocking` against a local object server that answers `HEAD`
//! and `Range` requests, and can be slow once for one chunk, fail with 503
//! a number of times, cut a range short, or refuse `HEAD`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vgirpc_fetch::{FetchConfig, FetchError};

const SLOW: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Behaviour {
    /// The first request for the range starting here waits [`SLOW`].
    slow_start: Option<usize>,
    /// Answer this many requests 503 first.
    failures: AtomicUsize,
    /// Ranges come back one byte short.
    truncate: bool,
    /// `HEAD` is refused, as a URL signed for `GET` alone refuses it.
    refuse_head: bool,
}

struct ObjectServer {
    url: String,
    /// Requests seen per range start (`usize::MAX` for whole-object GETs).
    requests: Arc<Mutex<HashMap<usize, usize>>>,
}

impl ObjectServer {
    fn start(body: Vec<u8>, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/object", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(HashMap::new()));
        let body = Arc::new(body);
        let behaviour = Arc::new(behaviour);
        let seen = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (body, behaviour, seen) =
                    (Arc::clone(&body), Arc::clone(&behaviour), Arc::clone(&seen));
                thread::spawn(move || serve(stream, &body, &behaviour, &seen));
            }
        });
        Self { url, requests }
    }

    fn count(&self, start: usize) -> usize {
        self.requests
            .lock()
            .expect("lock")
            .get(&start)
            .copied()
            .unwrap_or(0)
    }
}

fn serve(
    mut stream: TcpStream,
    body: &[u8],
    behaviour: &Behaviour,
    seen: &Mutex<HashMap<usize, usize>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (start, end) = value.trim().split_once('-').expect("a range");
            range = Some((
                start.parse::<usize>().expect("start"),
                end.parse::<usize>().expect("end"),
            ));
        }
    }
    if behaviour
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let _ = stream.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    if request_line.starts_with("HEAD") && behaviour.refuse_head {
        let _ = stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    if request_line.starts_with("HEAD") {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        return;
    }
    let Some((start, end)) = range else {
        *seen.lock().expect("lock").entry(usize::MAX).or_default() += 1;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        return;
    };
    let first = {
        let mut seen = seen.lock().expect("lock");
        let count = seen.entry(start).or_default();
        *count += 1;
        *count == 1
    };
    if first && behaviour.slow_start == Some(start) {
        thread::sleep(SLOW);
    }
    let slice = &body[start..=end];
    let sent = if behaviour.truncate {
        &slice[..slice.len() - 1]
    } else {
        slice
    };
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{}\r\nConnection: close\r\n\r\n",
        sent.len(),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(sent);
}

fn object() -> Vec<u8> {
    (0..1 << 20).map(|i: u32| (i % 251) as u8).collect()
}

/// 16 chunks of 64 KiB, 8 at a time.
fn chunked() -> FetchConfig {
    FetchConfig::default().with_chunks(1024, 64 * 1024)
}

#[test]
fn a_slow_chunk_is_hedged_by_a_second_request() {
    let body = object();
    let slow_start = 3 * 64 * 1024;
    let server = ObjectServer::start(
        body.clone(),
        Behaviour {
            slow_start: Some(slow_start),
            ..Behaviour::default()
        },
    );
    let mut config = chunked();
    // Loopback chunks take about a millisecond, so a scheduling hiccup can
    // look slow too: no budget may run out before the straggler.
    config.max_speculative_hedges = 0;
    let begun = Instant::now();
    let fetched = config.fetch_blocking(&server.url).expect("fetch");
    let hedged = begun.elapsed();
    assert_eq!(fetched, body);
    assert!(hedged < SLOW, "the hedged fetch took {hedged:?}");
    assert_eq!(
        server.count(slow_start),
        2,
        "the slow chunk was asked twice"
    );

    let single = ObjectServer::start(body.clone(), Behaviour::default());
    let begun = Instant::now();
    let whole = FetchConfig::default()
        .fetch_blocking(&single.url)
        .expect("fetch");
    let one_get = begun.elapsed();
    assert_eq!(whole, body);
    assert_eq!(single.count(usize::MAX), 1);
    eprintln!(
        "1 MiB in 16 ranges, one of them {SLOW:?} late: {hedged:?} with hedging; one GET of it, not late: {one_get:?}"
    );
}

#[test]
fn without_hedging_the_slow_chunk_is_waited_for() {
    let body = object();
    let server = ObjectServer::start(
        body.clone(),
        Behaviour {
            slow_start: Some(0),
            ..Behaviour::default()
        },
    );
    let mut config = chunked();
    config.speculative_retry_multiplier = 0.0;
    let begun = Instant::now();
    assert_eq!(config.fetch_blocking(&server.url).expect("fetch"), body);
    assert!(begun.elapsed() >= SLOW);
    assert_eq!(server.count(0), 1);
}

#[test]
fn server_errors_are_retried() {
    let body = object();
    let server = ObjectServer::start(
        body.clone(),
        Behaviour {
            failures: AtomicUsize::new(2),
            ..Behaviour::default()
        },
    );
    assert_eq!(chunked().fetch_blocking(&server.url).expect("fetch"), body);
}

#[test]
fn a_length_above_the_cap_is_refused_before_the_body() {
    let server = ObjectServer::start(object(), Behaviour::default());
    let mut config = chunked();
    config.max_fetch_bytes = 1000;
    let error = config
        .fetch_blocking(&server.url)
        .expect_err("too large")
        .to_string();
    assert!(
        error.contains("Content-Length 1048576 is above the fetch cap of 1000 bytes"),
        "{error}"
    );
    assert_eq!(server.count(0) + server.count(usize::MAX), 0);
}

#[test]
fn a_short_range_is_reported() {
    let server = ObjectServer::start(
        object(),
        Behaviour {
            truncate: true,
            ..Behaviour::default()
        },
    );
    let error = chunked()
        .fetch_blocking(&server.url)
        .expect_err("truncated")
        .to_string();
    assert!(error.contains("truncated body"), "{error}");
}

#[test]
fn a_presigned_url_is_probed_by_its_first_byte_and_fetched_in_ranges() {
    let body = object();
    let server = ObjectServer::start(
        body.clone(),
        Behaviour {
            refuse_head: true,
            ..Behaviour::default()
        },
    );
    let signed = format!("{}?X-Amz-Credential=c&X-Amz-Signature=s", server.url);
    // The counts below are exact only if a busy machine cannot make a chunk
    // look slow enough to be hedged.
    let mut config = chunked();
    config.speculative_retry_multiplier = 0.0;
    assert_eq!(config.fetch_blocking(&signed).expect("fetch"), body);
    assert_eq!(server.count(usize::MAX), 0, "no whole-object GET");
    assert_eq!(server.count(0), 2, "the probe and the first chunk");

    // Unsigned, a refused HEAD leaves the single GET.
    assert_eq!(config.fetch_blocking(&server.url).expect("fetch"), body);
    assert_eq!(server.count(usize::MAX), 1);
}

#[test]
fn an_expired_presigned_url_is_refused_before_any_request() {
    let server = ObjectServer::start(object(), Behaviour::default());
    let expired = format!(
        "{}?X-Amz-Date=20240229T235959Z&X-Amz-Expires=2&X-Amz-Credential=c&X-Amz-Signature=s",
        server.url
    );
    let error = chunked().fetch_blocking(&expired).expect_err("expired");
    assert!(matches!(error, FetchError::Expired { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("the pre-signed URL expired"), "{text}");
    assert!(!text.contains("X-Amz-Signature"), "{text}");
    assert_eq!(server.count(0) + server.count(usize::MAX), 0);

    // Still valid for an hour: fetched.
    let fresh = format!(
        "{}?X-Amz-Date={}&X-Amz-Expires=3600&X-Amz-Credential=c&X-Amz-Signature=s",
        server.url,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    assert_eq!(chunked().fetch_blocking(&fresh).expect("fetch"), object());
}
