//! Hostile message content: inputs of the wrong type, oversized schemas
//! and method names, dictionaries out of order.

use std::sync::Arc;

use anyhow::Result;
use arrow_array::Float64Array;
use vgirpc_client::Client;

use super::{Attempt, MIB};
use crate::link::strings;
use crate::payloads;
use crate::raw;
use crate::worker::{Transport, mib};

pub(super) fn wrong_exchange_type(attempt: &mut Attempt<'_>) -> Result<()> {
    if attempt.transport == Transport::Http {
        let mut client = Client::connect_http(&attempt.worker.url()?)?;
        let factor = raw::params(vec![(
            "factor",
            Arc::new(Float64Array::from(vec![2.0])) as _,
        )]);
        let mut call = client.stream("exchange_scale", &factor)?;
        let outcome = call.exchange(&strings(vec!["zz"]));
        attempt.answer = match &outcome {
            Ok(batch) => format!("a batch of {} rows", batch.num_rows()),
            Err(err) => err.to_string(),
        };
        let refused = matches!(&outcome, Err(err) if err.to_string().starts_with("TypeError: Input schema mismatch"));
        attempt.check(refused, || {
            "expected TypeError: Input schema mismatch".into()
        });
        return Ok(());
    }
    let reply = attempt
        .link
        .send("exchange_scale", &[], &payloads::exchange_with_strings());
    attempt.expect_error(&reply, "TypeError", "Input schema mismatch");
    Ok(())
}

pub(super) fn big_schemas(attempt: &mut Attempt<'_>) -> Result<()> {
    schema_rounds(attempt, false)
}

pub(super) fn big_schemas_compressed(attempt: &mut Attempt<'_>) -> Result<()> {
    schema_rounds(attempt, true)
}

fn schema_rounds(attempt: &mut Attempt<'_>, compressed: bool) -> Result<()> {
    let rounds = if attempt.settings.quick { 5 } else { 20 };
    let mut wire_bytes = 0;
    for round in 0..rounds {
        let mut body = payloads::call_with_big_schema(round, 40 << 20);
        let mut headers = Vec::new();
        if compressed {
            body = zstd::bulk::compress(&body, 3)?;
            headers.push(("Content-Encoding", "zstd"));
        }
        wire_bytes += body.len();
        let reply = attempt.link.send("echo_string", &headers, &body);
        attempt.answer = reply.describe();
        let echoed = reply
            .answer
            .as_ref()
            .is_ok_and(|a| raw::error_in(a).is_none());
        attempt.check(echoed, || format!("round {round} was not answered"));
    }
    attempt.answer = format!("{rounds} echoes, {:.1} MiB sent", mib(wire_bytes as u64));
    attempt.check_peak(300 * MIB, "through the requests")?;
    attempt.check_settles(300 * MIB, "after the requests")?;
    Ok(())
}

pub(super) fn dictionary_after_batch(attempt: &mut Attempt<'_>) -> Result<()> {
    let reply = attempt
        .link
        .send("echo_string", &[], &payloads::dictionary_after_its_batch());
    attempt.ends_connection = true;
    attempt.expect_error(&reply, "ArrowInvalid", "dictionaries");
    Ok(())
}

pub(super) fn huge_method_name(attempt: &mut Attempt<'_>) -> Result<()> {
    let body = payloads::huge_method_name(16 << 20);
    let reply = attempt.link.send("echo_string", &[], &body);
    attempt.answer = format!("{} ({} bytes back)", reply.describe(), reply.bytes);
    attempt.check(reply.error().is_some(), || "no error answer".into());
    attempt.check(reply.bytes < 64 * 1024, || {
        format!("the answer is {} bytes", reply.bytes)
    });
    Ok(())
}
