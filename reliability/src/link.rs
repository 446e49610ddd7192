//! One client connection to the worker, on any transport, that sends
//! whatever bytes it is given.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{ChildStdin, ChildStdout};
use std::time::Duration;

use anyhow::{Context as _, Result};
use arrow_array::{RecordBatch, StringArray};
use std::sync::Arc;
use vgirpc_wire::ipc::IpcBatch;

use crate::raw::{self, HttpAnswer};
use crate::worker::{Transport, Worker};

/// How long a link waits for an answer before calling the worker hung.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to the worker.
#[derive(Debug)]
pub(crate) enum Link {
    /// The writer is dropped to close the worker's stdin.
    Pipe(Option<ChildStdin>, BufReader<ChildStdout>),
    Unix(UnixStream, BufReader<UnixStream>),
    Http(TcpStream),
}

/// What the worker sent back for some bytes.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status, on HTTP.
    pub(crate) status: Option<u16>,
    /// The answer stream, or why none could be read.
    pub(crate) answer: Result<Vec<IpcBatch>>,
    /// Size of the whole reply on the wire (HTTP body, or answer stream).
    pub(crate) bytes: usize,
    /// The HTTP response, on HTTP.
    pub(crate) http: Option<HttpAnswer>,
}

impl Reply {
    /// One line for a report: the status, the error or what came back.
    pub(crate) fn describe(&self) -> String {
        let status = self.status.map(|s| format!("{s} ")).unwrap_or_default();
        match &self.answer {
            Ok(answer) => match raw::error_in(answer) {
                Some(err) => {
                    let message: String = err.message.chars().take(120).collect();
                    format!("{status}{}: {message}", err.error_type)
                }
                None => format!("{status}{} batches", answer.len()),
            },
            Err(err) => match &self.http {
                Some(http) if !http.body.is_empty() => format!("{status}{}", http.text()),
                _ => format!("{status}no answer ({err:#})"),
            },
        }
    }

    /// The error the answer carries, by type and message.
    pub(crate) fn error(&self) -> Option<(String, String)> {
        let answer = self.answer.as_ref().ok()?;
        raw::error_in(answer).map(|info| (info.error_type, info.message))
    }
}

impl Link {
    /// Opens a connection: the pipe itself (once), or a new socket.
    pub(crate) fn open(worker: &mut Worker, transport: Transport) -> Result<Self> {
        Ok(match transport {
            Transport::Pipe => {
                let (stdin, stdout) = worker.pipe()?;
                Link::Pipe(Some(stdin), BufReader::with_capacity(1 << 20, stdout))
            }
            Transport::Unix => {
                let stream = worker.unix()?;
                stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
                let reader = BufReader::with_capacity(1 << 20, stream.try_clone()?);
                Link::Unix(stream, reader)
            }
            Transport::Http => {
                let stream = worker.http()?;
                stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
                Link::Http(stream)
            }
        })
    }

    /// Sends `body` as a request for `method` and reads what comes back.
    /// Over HTTP `extra` headers go with it; a write the worker refuses
    /// halfway is a reply without an answer, not an error.
    pub(crate) fn send(&mut self, method: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
        match self {
            Link::Pipe(Some(writer), reader) => stream_reply(writer, reader, body),
            Link::Pipe(None, _) => Reply {
                status: None,
                answer: Err(anyhow::anyhow!("the worker's stdin is closed")),
                bytes: 0,
                http: None,
            },
            Link::Unix(writer, reader) => stream_reply(writer, reader, body),
            Link::Http(stream) => {
                let path = format!("/{method}");
                match raw::post(stream, &path, extra, body) {
                    Ok(http) => Reply {
                        status: Some(http.status),
                        answer: raw::answer_of(&http.body),
                        bytes: http.body.len(),
                        http: Some(http),
                    },
                    Err(err) => Reply {
                        status: None,
                        answer: Err(err),
                        bytes: 0,
                        http: None,
                    },
                }
            }
        }
    }

    /// Writes `bytes` without waiting for anything back (byte streams).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Link::Pipe(Some(writer), _) => writer.write_all(bytes)?,
            Link::Pipe(None, _) => anyhow::bail!("the worker's stdin is closed"),
            Link::Unix(writer, _) => writer.write_all(bytes)?,
            Link::Http(stream) => stream.write_all(bytes)?,
        }
        Ok(())
    }

    /// Sends `body` and then ends the request side of the connection, so a
    /// worker waiting for bytes that never come sees the end instead.
    pub(crate) fn send_then_close(&mut self, method: &str, body: &[u8]) -> Reply {
        match self {
            Link::Pipe(writer, reader) => {
                let sent = writer
                    .take()
                    .map(|mut w| w.write_all(body).and_then(|()| w.flush()));
                let mut reply = stream_reply(&mut std::io::sink(), reader, &[]);
                if let (Some(Err(err)), Err(_)) = (sent, &reply.answer) {
                    reply.answer = Err(anyhow::Error::new(err).context("writing the request"));
                }
                reply
            }
            Link::Unix(writer, reader) => {
                let sent = writer
                    .write_all(body)
                    .and_then(|()| writer.shutdown(std::net::Shutdown::Write));
                let mut reply = stream_reply(&mut std::io::sink(), reader, &[]);
                if let (Err(err), Err(_)) = (sent, &reply.answer) {
                    reply.answer = Err(anyhow::Error::new(err).context("writing the request"));
                }
                reply
            }
            Link::Http(_) => self.send(method, &[], body),
        }
    }

    /// Calls `echo_string` and checks the echo: the request any attack
    /// must leave the worker able to answer.
    pub(crate) fn echo(&mut self, text: &str) -> Result<()> {
        let params = raw::params(vec![(
            "value",
            Arc::new(StringArray::from(vec![text])) as _,
        )]);
        let reply = self.send("echo_string", &[], &raw::call("echo_string", &params));
        let answer = reply.answer.context("echo_string got no answer")?;
        let result = answer
            .iter()
            .find(|b| b.batch.num_rows() == 1)
            .with_context(|| format!("echo_string answered {}", describe(&answer)))?;
        let echoed = result
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .context("echo_string answered a non-string")?;
        anyhow::ensure!(echoed.value(0) == text, "echo_string changed the text");
        Ok(())
    }
}

fn describe(answer: &[IpcBatch]) -> String {
    match raw::error_in(answer) {
        Some(err) => format!("{}: {}", err.error_type, err.message),
        None => format!("{} batches and no result row", answer.len()),
    }
}

fn stream_reply(writer: &mut impl Write, reader: &mut impl Read, body: &[u8]) -> Reply {
    let sent = writer.write_all(body).and_then(|()| writer.flush());
    let mut counted = Counted {
        inner: reader,
        bytes: 0,
    };
    let answer = raw::read_answer(&mut counted);
    let answer = match (sent, answer) {
        (_, Ok(answer)) => Ok(answer),
        (Err(write), Err(_)) => Err(anyhow::Error::new(write).context("writing the request")),
        (Ok(()), Err(read)) => Err(read),
    };
    Reply {
        status: None,
        answer,
        bytes: counted.bytes,
        http: None,
    }
}

/// Counts the bytes read through it.
struct Counted<'a, R> {
    inner: &'a mut R,
    bytes: usize,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n;
        Ok(n)
    }
}

/// A batch of one string column `value`.
pub(crate) fn strings(values: Vec<&str>) -> RecordBatch {
    raw::params(vec![("value", Arc::new(StringArray::from(values)) as _)])
}
