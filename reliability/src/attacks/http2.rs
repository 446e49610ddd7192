//! Hostile HTTP/2: what one h2c connection can ask of the worker that
//! HTTP/1.1 cannot. Streams are cheap for the peer to open and cancel, and
//! each may claim a body it never sends.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use arrow_array::StringArray;
use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use http::{Method, Request};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::{Attempt, MIB};
use crate::payloads;
use crate::raw;
use crate::worker::mib;

/// Streams opened and cancelled at once, far beyond what any server
/// should keep work for.
const RAPID_RESETS: usize = 10_000;

/// The server's limit of concurrent streams per connection.
const STREAMS: usize = 64;

/// The body-read timeout the worker gets for [`stalled_streams`].
pub(super) const STALL_TIMEOUT_SECS: u64 = 10;

/// An h2c connection with prior knowledge, and the task driving it.
async fn connect(url: &str) -> Result<(SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>)> {
    let address = url.trim_start_matches("http://");
    let socket = TcpStream::connect(address).await?;
    let (client, connection) = h2::client::Builder::new()
        // The attack resets streams faster than it reads the answers.
        .max_concurrent_reset_streams(RAPID_RESETS)
        .handshake(socket)
        .await
        .context("the HTTP/2 handshake")?;
    Ok((client, tokio::spawn(connection)))
}

fn post(url: &str, content_length: usize) -> Result<Request<()>> {
    Ok(Request::builder()
        .method(Method::POST)
        .uri(format!("{url}/echo_string"))
        .header("content-type", "application/vnd.apache.arrow.stream")
        .header("content-length", content_length)
        .body(())?)
}

/// Runs an attack's client side on a runtime of its own: the matrix is
/// plain threads everywhere else.
fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// The "rapid reset" pattern: a stream opened and cancelled at once, over
/// and over. The worker must neither queue work for cancelled streams nor
/// let the connection grow without bound; refusing the connection
/// (`GOAWAY`) is a fine answer.
pub(super) fn rapid_reset(attempt: &mut Attempt<'_>) -> Result<()> {
    let url = attempt.worker.url()?;
    let started = Instant::now();
    let (opened, ended) = block_on(async {
        let (client, connection) = connect(&url).await?;
        let mut client = Some(client);
        let mut opened = 0;
        while opened < RAPID_RESETS {
            // Refused once the worker gives up on the connection.
            let Some(pending) = client.take() else { break };
            let Ok(mut ready) = pending.ready().await else {
                break;
            };
            let Ok((_, mut stream)) = ready.send_request(post(&url, 1)?, false) else {
                break;
            };
            stream.send_reset(h2::Reason::CANCEL);
            opened += 1;
            client = Some(ready);
        }
        drop(client);
        let ended = tokio::time::timeout(Duration::from_secs(30), connection).await;
        let ended = match ended {
            Err(_) => "still open 30 s after the last stream".to_owned(),
            Ok(Ok(Ok(()))) => "closed cleanly".to_owned(),
            Ok(Ok(Err(err))) => format!("closed by the worker: {err}"),
            Ok(Err(err)) => bail!("the connection task failed: {err}"),
        };
        Ok((opened, ended))
    })?;
    attempt.answer = format!(
        "{opened} of {RAPID_RESETS} streams opened and cancelled in {:.1} s; connection {ended}",
        started.elapsed().as_secs_f64()
    );
    let limit = attempt.baseline.resident + 64 * MIB;
    attempt.check_peak(limit, "through the resets")?;
    Ok(())
}

/// Every stream a connection may open claims a 15 MiB body, sends part of
/// it and stops. The worker may hold about what was sent, must give up on
/// each stream once the body-read timeout passes, and serves other
/// clients meanwhile.
pub(super) fn stalled_streams(attempt: &mut Attempt<'_>) -> Result<()> {
    let url = attempt.worker.url()?;
    let sent = 256 * 1024;
    let body = Bytes::from(payloads::body_claim(15 << 20, sent));
    let sent_total = (STREAMS * body.len()) as u64;
    let worker = &*attempt.worker;
    let (answers, held, served) = block_on(async {
        let (mut client, _connection) = connect(&url).await?;
        let mut pending: Vec<(ResponseFuture, _, Instant)> = Vec::with_capacity(STREAMS);
        for _ in 0..STREAMS {
            client = client.ready().await?;
            let (response, mut stream) = client.send_request(post(&url, 15 << 20)?, false)?;
            stream.reserve_capacity(body.len());
            stream.send_data(body.clone(), false)?;
            // Kept open: dropping the send half would end the stream.
            pending.push((response, stream, Instant::now()));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let held = worker.memory()?.peak;
        let answers = tokio::spawn(async move {
            let mut answers = Vec::with_capacity(STREAMS);
            for (response, _stream, sent_at) in pending {
                let deadline = Duration::from_secs(STALL_TIMEOUT_SECS + 20);
                let answer = match tokio::time::timeout(deadline, response).await {
                    Err(_) => Err("no answer".to_owned()),
                    Ok(Ok(response)) => Ok((response.status().as_u16(), sent_at.elapsed())),
                    // A reset stream has ended too; status 0 stands for it.
                    Ok(Err(_reset)) => Ok((0, sent_at.elapsed())),
                };
                answers.push(answer);
            }
            answers
        });
        let mut served = 0;
        while !answers.is_finished() {
            let (client, connection) = connect(&url).await?;
            let mut client = client.ready().await?;
            let echo = echo_request("beside the stalled streams");
            let (response, mut stream) = client.send_request(post(&url, echo.len())?, false)?;
            stream.send_data(Bytes::from(echo), true)?;
            let status = tokio::time::timeout(Duration::from_secs(10), response)
                .await
                .context("a valid call was not answered within 10 s")??
                .status();
            if !status.is_success() {
                bail!("a valid call was answered {status}");
            }
            served += 1;
            drop(client);
            connection.abort();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok((answers.await?, held, served))
    })?;
    let timeout = Duration::from_secs(STALL_TIMEOUT_SECS);
    let ended: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    let earliest = ended.iter().map(|(_, at)| *at).min().unwrap_or_default();
    let latest = ended.iter().map(|(_, at)| *at).max().unwrap_or_default();
    attempt.check(ended.len() == STREAMS, || {
        format!("{} of {STREAMS} streams ended", ended.len())
    });
    attempt.check(earliest + Duration::from_secs(1) >= timeout, || {
        format!("a stream ended after {earliest:?}, before the timeout")
    });
    attempt.check(latest <= timeout + Duration::from_secs(10), || {
        format!("a stream ended only after {latest:?}")
    });
    attempt.check(served > 0, || "no valid call was served meanwhile".into());
    let limit = attempt.baseline.resident + 3 * sent_total + STREAMS as u64 * MIB;
    attempt.check(held <= limit, || {
        format!(
            "peak RSS {:.0} MiB while stalled, over {:.0} MiB",
            mib(held),
            mib(limit)
        )
    });
    let statuses: Vec<u16> = ended.iter().map(|(status, _)| *status).collect();
    attempt.answer = format!(
        "{:.1} MiB sent on {STREAMS} streams; RSS {:.0} MiB while stalled; ended after \
         {:.1}-{:.1} s with {}; {served} valid calls served meanwhile",
        mib(sent_total),
        mib(held),
        earliest.as_secs_f64(),
        latest.as_secs_f64(),
        describe_statuses(&statuses),
    );
    Ok(())
}

fn echo_request(text: &str) -> Vec<u8> {
    let params = raw::params(vec![(
        "value",
        Arc::new(StringArray::from(vec![text])) as _,
    )]);
    raw::call("echo_string", &params)
}

/// "408 x 64", or several such, with resets shown as such.
fn describe_statuses(statuses: &[u16]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(*status).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|(status, count)| match status {
            0 => format!("a reset x {count}"),
            status => format!("{status} x {count}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
