//! Requests as bytes, sent without a client's checks: over a byte stream
//! (pipe or Unix socket) or as one HTTP/1.1 exchange on a TCP connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use vgirpc_wire::classify::{BatchKind, classify};
use vgirpc_wire::ipc::{IpcBatch, StreamReader, write_stream_bytes};
use vgirpc_wire::log::ErrorInfo;
use vgirpc_wire::request::Request;

/// The Arrow IPC media type every vgi-rpc body has.
pub(crate) const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// A one-row parameter batch from named columns.
pub(crate) fn params(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns of one row")
}

/// The request stream calling `method` with `params`.
pub(crate) fn call(method: &str, params: &RecordBatch) -> Vec<u8> {
    write_stream_bytes(
        params.schema_ref(),
        [(params, &Request::metadata_for(method))],
    )
    .expect("an in-memory stream")
}

/// Reads one answer stream from a byte-stream connection.
pub(crate) fn read_answer(reader: &mut impl Read) -> Result<Vec<IpcBatch>> {
    let mut stream = StreamReader::open(reader).context("reading the answer's schema")?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next_batch().context("reading the answer")? {
        batches.push(batch);
    }
    Ok(batches)
}

/// Reads every answer stream in an HTTP response body.
pub(crate) fn answer_of(body: &[u8]) -> Result<Vec<IpcBatch>> {
    read_answer(&mut &body[..])
}

/// The error an answer reports, if it reports one.
pub(crate) fn error_in(answer: &[IpcBatch]) -> Option<ErrorInfo> {
    answer
        .iter()
        .find_map(|batch| match classify(&batch.batch, &batch.metadata) {
            BatchKind::Error(info) => Some(info),
            _ => None,
        })
}

/// One HTTP response, read whole.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpAnswer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text, shortened for a report.
    pub(crate) fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(200).collect()
    }
}

/// The head of a `POST` of `body_len` bytes with `extra` headers.
pub(crate) fn post_head(path: &str, body_len: usize, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ARROW_STREAM}\r\n\
         Content-Length: {body_len}\r\n"
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Sends one `POST` and reads its response on `stream`.
pub(crate) fn post(
    stream: &mut TcpStream,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpAnswer> {
    stream
        .write_all(&post_head(path, body.len(), extra))
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush())
        .context("writing the request")?;
    read_response(stream)
}

/// Reads one response (a `Content-Length` or chunked body) from `stream`.
pub(crate) fn read_response(stream: &mut TcpStream) -> Result<HttpAnswer> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        bail!("the connection closed before a response");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the connection closed inside the response head");
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut answer = HttpAnswer {
        status,
        headers,
        body: Vec::new(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("chunk size {line:?}"))?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            answer.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = answer.header("content-length") {
        let length: usize = length.parse().context("content-length")?;
        answer.body.resize(length, 0);
        reader.read_exact(&mut answer.body)?;
    }
    Ok(answer)
}
