//! HTTP servers written on bare sockets for the client to meet: a proxy
//! that refuses requests on demand, and an object store serving the
//! batches a server externalized.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use vgirpc_http::{ExternalStorage, HttpError};

/// Reads one HTTP/1.1 request from `stream`: its request line and all
/// its bytes (head and `Content-Length` body), the `connection` header
/// replaced by `connection: close`. `None` at end of stream.
fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut first = String::new();
    if stream.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut raw = first.clone().into_bytes();
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        }
        if !name.eq_ignore_ascii_case("connection") {
            raw.extend(line.as_bytes());
        }
    }
    raw.extend(b"connection: close\r\n\r\n");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    raw.extend(body);
    Some((first.trim_end().to_owned(), raw))
}

/// A proxy to `upstream` that answers a request `503 Service Unavailable`
/// when `fail(request_line, times_seen_before)` says so and passes it on
/// otherwise; records every request line it received.
pub(crate) fn proxy(
    upstream: u16,
    fail: impl Fn(&str, usize) -> bool + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let fail = Arc::new(fail);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (log, fail) = (log.clone(), fail.clone());
            std::thread::spawn(move || {
                let mut client = BufReader::new(client.unwrap());
                while let Some((line, raw)) = read_request(&mut client) {
                    let before = {
                        let mut log = log.lock().unwrap();
                        let before = log.iter().filter(|l| **l == line).count();
                        log.push(line.clone());
                        before
                    };
                    if fail(&line, before) {
                        let refusal = b"HTTP/1.1 503 Service Unavailable\r\n\
                                        content-length: 0\r\n\r\n";
                        if client.get_mut().write_all(refusal).is_err() {
                            return;
                        }
                        continue;
                    }
                    // One upstream connection per request, closed by the
                    // server after its answer, which is relayed whole.
                    let mut server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                    server.write_all(&raw).unwrap();
                    let mut answer = Vec::new();
                    server.read_to_end(&mut answer).unwrap();
                    let _ = client.get_mut().write_all(&answer);
                    return;
                }
            });
        }
    });
    (port, seen)
}

/// Objects uploaded by the server, served back over plain HTTP.
#[derive(Default)]
pub(crate) struct MemoryStorage {
    pub(crate) objects: Mutex<Vec<(Vec<u8>, Option<String>)>>,
    base: Mutex<String>,
}

impl ExternalStorage for MemoryStorage {
    fn upload(&self, data: Vec<u8>, content_encoding: Option<&str>) -> Result<String, HttpError> {
        let mut objects = self.objects.lock().unwrap();
        objects.push((data, content_encoding.map(str::to_owned)));
        Ok(format!(
            "{}/objects/{}",
            self.base.lock().unwrap(),
            objects.len() - 1
        ))
    }
}

/// Serves `storage`'s objects at `GET /objects/<n>`, one request per
/// connection.
pub(crate) fn serve_objects(storage: Arc<MemoryStorage>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    *storage.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut reader = BufReader::new(stream.unwrap());
            let Some((line, _)) = read_request(&mut reader) else {
                continue;
            };
            let index: usize = line
                .split_whitespace()
                .nth(1)
                .and_then(|path| path.strip_prefix("/objects/"))
                .and_then(|n| n.parse().ok())
                .unwrap();
            let (body, encoding) = storage.objects.lock().unwrap()[index].clone();
            let mut head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            if let Some(encoding) = encoding {
                head.push_str(&format!("content-encoding: {encoding}\r\n"));
            }
            head.push_str("\r\n");
            let stream = reader.get_mut();
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
}
