//! Oversized payloads, error recovery, connection reuse and
//! cancellation.

use vgirpc::client::{ClientError, Transport};

use crate::client_suite::case::{TestCase, http_only, t};
use crate::client_suite::checks::{
    Failure, approx, collect, echo, eq, float, names, point, remote, value_batch,
};
use crate::client_suite::values::cancel_counters;

#[rustfmt::skip]
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    vec![
        // Oversized payloads: the reference checks them against an HTTP
        // server's response caps; a pipe has no cap, so they must arrive
        // whole. Sizes follow the reference's strict-cap setup (64 KiB cap,
        // four times over).
        http_only("unary_strict_fail"),
        http_only("exchange_strict_fail"),
        http_only("producer_external_strict_fail"),
        http_only("externalized_strict_fail"),
        t("oversized", "unary", |c| {
            let got = c.client.oversized_unary(262_144)?;
            eq(got.len(), 262_144)?;
            check!(got.iter().all(|b| *b == 0));
            Ok("262144 zero bytes".into())
        }),
        t("oversized", "producer", |c| {
            let batches = collect(c.client.produce_oversized_batch(16_384)?)?;
            eq(batches.len(), 1)?;
            eq(batches[0].num_rows(), 16_384)?;
            Ok(format!("{:?}", names(&batches[0])))
        }),
        t("oversized", "exchange", |c| {
            let mut session = c.client.exchange_oversized(16_384)?;
            let out = session.exchange(&value_batch(&[1.0]))?;
            eq(out.num_rows(), 16_384)?;
            session.close()?;
            Ok(format!("{:?}", names(&out)))
        }),
        // Error recovery.
        t("error_recovery", "unary_error_then_success", |c| {
            remote(c.client.raise_value_error("boom".into()))?;
            echo(42, c.client.echo_int(42))
        }),
        t("error_recovery", "stream_error_then_unary", |c| {
            for item in c.client.produce_error_mid_stream(1)? {
                if let Err(err) = item {
                    remote::<()>(Err(err))?;
                }
            }
            echo("ok".to_owned(), c.client.echo_string("ok".into()))
        }),
        t("error_recovery", "exchange_error_then_exchange", |c| {
            let mut failing = c.client.exchange_error_on_nth(1)?;
            remote(failing.exchange(&value_batch(&[1.0])))?;
            drop(failing);
            let mut session = c.client.exchange_scale(2.0)?;
            approx(float(&session.exchange(&value_batch(&[5.0]))?, "value", 0)?, 10.0)?;
            session.close()?;
            Ok("10.0".into())
        }),
        t("error_recovery", "multiple_sequential_sessions", |c| {
            eq(c.client.echo_int(1)?, 1)?;
            eq(collect(c.client.produce_n(2)?)?.len(), 2)?;
            let mut session = c.client.exchange_scale(2.0)?;
            approx(float(&session.exchange(&value_batch(&[3.0]))?, "value", 0)?, 6.0)?;
            session.close()?;
            drop(session);
            echo("end".to_owned(), c.client.echo_string("end".into()))
        }),
        // Connection reuse (_pytest_suite.py TestConnectionReuse).
        t("connection_reuse", "many_sequential_unary_calls", |c| {
            for i in 0..25 {
                eq(c.client.echo_string(format!("call-{i}"))?, format!("call-{i}"))?;
                eq(c.client.echo_int(i)?, i)?;
                approx(c.client.add_floats(i as f64, 0.5)?, i as f64 + 0.5)?;
                eq(c.client.echo_point(point(i as f64, -(i as f64)))?, point(i as f64, -(i as f64)))?;
            }
            Ok("25 rounds".into())
        }),
        t("connection_reuse", "optional_absence_round_trips_repeatedly", |c| {
            for i in 0..15 {
                eq(c.client.echo_optional_string(None)?, None)?;
                eq(c.client.echo_optional_string(Some(format!("v{i}")))?, Some(format!("v{i}")))?;
                eq(c.client.echo_optional_int(None)?, None)?;
                eq(c.client.echo_optional_int(Some(i))?, Some(i))?;
            }
            echo("done".to_owned(), c.client.echo_string("done".into()))
        }),
        // Cancellation.
        t("cancel", "producer_mid_stream", |c| {
            c.client.reset_cancel_probe()?;
            let mut session = c.client.cancellable_producer()?;
            for _ in 0..3 {
                check!(session.next_batch()?.is_some(), "the producer ended early");
            }
            session.cancel()?;
            drop(session);
            let (produce, _, cancelled) = cancel_counters(c)?;
            eq(cancelled, 1)?;
            check!(produce >= 3, "produce_calls={produce}");
            eq(c.client.echo_int(42)?, 42)?;
            Ok(format!("on_cancel={cancelled}"))
        }),
        t("cancel", "exchange_after_n", |c| {
            c.client.reset_cancel_probe()?;
            let mut session = c.client.cancellable_exchange()?;
            session.exchange(&value_batch(&[1.0]))?;
            session.exchange(&value_batch(&[2.0]))?;
            session.cancel()?;
            drop(session);
            let (_, exchanged, cancelled) = cancel_counters(c)?;
            eq((exchanged, cancelled), (2, 1))?;
            Ok(format!("exchange={exchanged} on_cancel={cancelled}"))
        }),
        t("cancel", "before_any_exchange", |c| {
            c.client.reset_cancel_probe()?;
            c.client.cancellable_exchange()?.cancel()?;
            let (_, exchanged, cancelled) = cancel_counters(c)?;
            eq(exchanged, 0)?;
            eq(c.client.echo_int(1)?, 1)?;
            Ok(format!("exchange={exchanged} on_cancel={cancelled}"))
        }),
        t("cancel", "idempotent", |c| {
            c.client.reset_cancel_probe()?;
            let mut s1 = c.client.cancellable_exchange()?;
            s1.cancel()?;
            s1.cancel()?;
            drop(s1);
            let mut s2 = c.client.cancellable_exchange()?;
            s2.close()?;
            s2.cancel()?;
            drop(s2);
            let mut s3 = c.client.cancellable_exchange()?;
            s3.cancel()?;
            s3.close()?;
            drop(s3);
            let (_, _, cancelled) = cancel_counters(c)?;
            check!(cancelled == 2 || cancelled == 3, "on_cancel_calls={cancelled}");
            Ok(format!("on_cancel={cancelled}"))
        }),
        t("cancel", "exchange_after_cancel_raises", |c| {
            let mut session = c.client.cancellable_exchange()?;
            session.cancel()?;
            match session.exchange(&value_batch(&[99.0])) {
                Err(err @ ClientError::StreamClosed) => {
                    check!(err.to_string().contains("ProtocolError"), "error {err}");
                    Ok(err.to_string())
                }
                other => Err(Failure::check(format!("expected StreamClosed, got {other:?}"))),
            }
        }),
        t("cancel", "transport_reusable", |c| {
            let mut session = c.client.cancellable_producer()?;
            session.next_batch()?;
            session.next_batch()?;
            session.cancel()?;
            drop(session);
            eq(collect(c.client.produce_n(3)?)?.len(), 3)?;
            echo("ok".to_owned(), c.client.echo_string("ok".into()))
        }),
        t("cancel", "can_be_issued", |c| {
            let mut session = c.client.cancellable_producer()?;
            session.next_batch()?;
            session.cancel()?;
            drop(session);
            echo(7, c.client.echo_int(7))
        }),
    ]
}
