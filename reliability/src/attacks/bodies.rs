//! Hostile request bodies: a claimed length never sent, zstd bombs, a
//! body just under the size limit.

use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use anyhow::Result;

use super::{Attempt, GIB, MIB};
use crate::payloads;
use crate::raw;
use crate::worker::{Transport, mib};

pub(super) fn body_claim(attempt: &mut Attempt<'_>) -> Result<()> {
    let body = payloads::body_claim(1 << 31, 300);
    let limit = attempt.baseline.resident + 64 * MIB;
    let reply = if attempt.transport == Transport::Http {
        let reply = attempt.link.send("echo_string", &[], &body);
        attempt.check_peak(limit, "after the claim")?;
        reply
    } else {
        // The worker now waits for the rest of the body: whatever the claim
        // made it reserve is held, and is measured before the connection
        // ends (a pipe worker then exits).
        attempt.link.write(&body)?;
        thread::sleep(Duration::from_millis(300));
        attempt.check_peak(limit, "holding the claim")?;
        attempt.link.send_then_close("echo_string", &[])
    };
    attempt.ends_connection = true;
    attempt.answer = format!("{} ({} bytes sent)", reply.describe(), body.len());
    let answered = reply.error().is_some();
    attempt.check(answered, || "no error answer".into());
    Ok(())
}

pub(super) fn zstd_bombs(attempt: &mut Attempt<'_>) -> Result<()> {
    let bomb = payloads::zstd_bomb(4 * GIB);
    let cap = attempt.settings.zstd_cap;
    let headers = [("Content-Encoding", "zstd")];
    let reply = attempt.link.send("echo_string", &headers, &bomb);
    attempt.answer = format!("{} ({} bytes sent)", reply.describe(), bomb.len());
    attempt.check(reply.status == Some(413), || {
        format!("expected 413, got {:?}", reply.status)
    });
    let single = attempt.baseline.resident + cap + cap / 5;
    attempt.check_peak(single, "one bomb")?;

    attempt.worker.reset_peak()?;
    let url = attempt.worker.url()?;
    let statuses: Vec<Result<u16>> = thread::scope(|scope| {
        let bomb = &bomb;
        let url = &url;
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(move || {
                    let addr = url.trim_start_matches("http://");
                    let mut stream = TcpStream::connect(addr)?;
                    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
                    Ok(raw::post(&mut stream, "/echo_string", &headers, bomb)?.status)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
            })
            .collect()
    });
    let all_refused = statuses.iter().all(|s| matches!(s, Ok(413)));
    attempt.check(all_refused, || {
        format!("four at once answered {statuses:?}")
    });
    let four = attempt.baseline.resident + 4 * cap + 4 * cap / 5;
    attempt.check_peak(four, "four bombs at once")?;
    // Each runtime thread that decoded a bomb keeps its zstd context, whose
    // window may reach the 8 MiB the server accepts.
    let settled = attempt.baseline.resident + attempt.baseline.resident / 10 + 48 * MIB;
    attempt.check_settles(settled, "after the bombs")?;
    Ok(())
}

pub(super) fn large_body(attempt: &mut Attempt<'_>) -> Result<()> {
    // Just under the default 1 GiB body limit, with room for the framing.
    let body = payloads::large_body((GIB - MIB) as usize);
    let reply = attempt.link.send("echo_int", &[], &body);
    attempt.answer = format!(
        "{} ({:.0} MiB sent)",
        reply.describe(),
        mib(body.len() as u64)
    );
    drop(body);
    attempt.check(reply.error().is_some(), || "no error answer".into());
    let peak_limit = attempt.baseline.resident + GIB + GIB / 5;
    attempt.check_peak(peak_limit, "during the body")?;
    // The quick pass (CI, on a machine busy building) allows 4 MiB over the
    // 10 % for the allocator's purge timing; the full run holds the worker
    // to 10 % of its warm idle RSS.
    let slack = if attempt.settings.quick { 4 * MIB } else { 0 };
    let settled = attempt.baseline.resident + attempt.baseline.resident / 10 + slack;
    attempt.check_settles(settled, "after the body")?;
    Ok(())
}
