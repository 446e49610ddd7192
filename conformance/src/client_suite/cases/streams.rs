//! Producer and exchange streams and their headers.

use std::sync::Arc;

use arrow_array::{Array, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use vgirpc::Level;
use vgirpc::client::Transport;

use crate::client_suite::case::{TestCase, t};
use crate::client_suite::checks::{
    Failure, approx, collect, column, echo, eq, float, floats, int, logs_seen, remote,
    single_column, value_batch,
};
use crate::client_suite::connection::lock;

#[rustfmt::skip]
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    vec![
        // Producer streams.
        t("producer_stream", "produce_n", |c| {
            let batches = collect(c.client.produce_n(5)?)?;
            eq(batches.len(), 5)?;
            for (i, batch) in batches.iter().enumerate() {
                eq(int(batch, "index", 0)?, i as i64)?;
                eq(int(batch, "value", 0)?, i as i64 * 10)?;
            }
            Ok(format!("{} batches", batches.len()))
        }),
        t("producer_stream", "produce_empty", |c| {
            eq(collect(c.client.produce_empty()?)?.len(), 0)?;
            Ok("0 batches".into())
        }),
        t("producer_stream", "produce_single", |c| {
            let batches = collect(c.client.produce_single()?)?;
            eq(batches.len(), 1)?;
            eq(int(&batches[0], "index", 0)?, 0)?;
            Ok("1 batch".into())
        }),
        t("producer_stream", "produce_with_logs", |c| {
            c.clear_logs();
            eq(collect(c.client.produce_with_logs(3)?)?.len(), 3)?;
            let logs = c.logs();
            eq(logs.len(), 3)?;
            for (i, log) in logs.iter().enumerate() {
                eq(log.level, Level::Info)?;
                check!(log.message.contains(&i.to_string()), "log {i}: {:?}", log.message);
            }
            Ok(logs_seen(&logs))
        }),
        t("producer_stream", "error_mid_stream", |c| {
            let mut count = 0;
            let mut error = None;
            for item in c.client.produce_error_mid_stream(3)? {
                match item {
                    Ok(_) => count += 1,
                    Err(err) => error = Some(err),
                }
            }
            let (kind, message) = remote(error.map_or(Ok(()), Err))?;
            check!(message.contains("intentional error"), "message {message:?}");
            check!(count <= 3, "{count} batches before the error");
            Ok(format!("{count} then {kind}: {message}"))
        }),
        t("producer_stream", "error_on_init", |c| {
            // Init errors of headerless streams spoil a pipe connection
            // (the reference suite skips this test on pipes), so it runs on
            // a connection of its own.
            let mut own = c.fresh()?;
            // Over HTTP the start is a request of its own, which fails.
            let result = own.produce_error_on_init().and_then(|mut s| s.next_batch());
            let (kind, message) = remote(result)?;
            check!(message.contains("intentional init error"), "message {message:?}");
            Ok(format!("{kind}: {message}"))
        }),
        // Producer headers.
        t("producer_header", "header_values", |c| {
            let stream = c.client.produce_with_header(3)?;
            let header = stream.header().clone();
            eq(header.total_expected, 3)?;
            check!(header.description.contains('3'), "header {header:?}");
            eq(collect(stream)?.len(), 3)?;
            Ok(format!("{header:?}"))
        }),
        t("producer_header", "header_with_logs", |c| {
            c.clear_logs();
            let stream = c.client.produce_with_header_and_logs(2)?;
            let header = stream.header().clone();
            eq(collect(stream)?.len(), 2)?;
            let logs = c.logs();
            check!(logs.iter().any(|l| l.message == "stream init log"), "logs {}", logs_seen(&logs));
            Ok(format!("{header:?} {}", logs_seen(&logs)))
        }),
        // Exchange streams.
        t("exchange_stream", "scale", |c| {
            let mut session = c.client.exchange_scale(3.0)?;
            let out = session.exchange(&value_batch(&[1.0, 2.0, 3.0]))?;
            let values = floats(&out, "value")?;
            eq(values.len(), 3)?;
            for (got, want) in values.iter().zip([3.0, 6.0, 9.0]) {
                approx(*got, want)?;
            }
            session.close()?;
            Ok(format!("{values:?}"))
        }),
        t("exchange_stream", "echo", |c| {
            let mut session = c.client.exchange_scale(1.0)?;
            let values = floats(&session.exchange(&value_batch(&[5.0, 10.0]))?, "value")?;
            eq(values.clone(), vec![5.0, 10.0])?;
            session.close()?;
            Ok(format!("{values:?}"))
        }),
        t("exchange_stream", "accumulate", |c| {
            let mut session = c.client.exchange_accumulate()?;
            let out1 = session.exchange(&value_batch(&[1.0, 2.0]))?;
            approx(float(&out1, "running_sum", 0)?, 3.0)?;
            eq(int(&out1, "exchange_count", 0)?, 1)?;
            let out2 = session.exchange(&value_batch(&[10.0]))?;
            approx(float(&out2, "running_sum", 0)?, 13.0)?;
            eq(int(&out2, "exchange_count", 0)?, 2)?;
            session.close()?;
            Ok("3/1 13/2".into())
        }),
        t("exchange_stream", "with_logs", |c| {
            c.clear_logs();
            let mut session = c.client.exchange_with_logs()?;
            session.exchange(&value_batch(&[1.0]))?;
            // The session still borrows the client; the logs are apart.
            let logs = lock(c.logs).clone();
            eq(logs.iter().map(|l| l.level).collect::<Vec<_>>(), vec![Level::Info, Level::Debug])?;
            session.close()?;
            Ok(logs_seen(&logs))
        }),
        t("exchange_stream", "error_first", |c| {
            let mut session = c.client.exchange_error_on_nth(1)?;
            let (kind, message) = remote(session.exchange(&value_batch(&[1.0])))?;
            check!(message.contains("intentional error"), "message {message:?}");
            Ok(format!("{kind}: {message}"))
        }),
        t("exchange_stream", "error_nth", |c| {
            let mut session = c.client.exchange_error_on_nth(3)?;
            session.exchange(&value_batch(&[1.0]))?;
            session.exchange(&value_batch(&[2.0]))?;
            let (kind, message) = remote(session.exchange(&value_batch(&[3.0])))?;
            check!(message.contains("intentional error"), "message {message:?}");
            Ok(format!("{kind}: {message}"))
        }),
        t("exchange_stream", "empty_session", |c| {
            c.client.exchange_scale(1.0)?.close()?;
            echo(42, c.client.echo_int(42))
        }),
        t("exchange_stream", "error_on_init", |c| {
            // As for producers: a connection of its own.
            let mut own = c.fresh()?;
            let result = own
                .exchange_error_on_init()
                .and_then(|mut s| s.exchange(&value_batch(&[1.0])));
            let (kind, message) = remote(result)?;
            check!(message.contains("intentional exchange init error"), "message {message:?}");
            Ok(format!("{kind}: {message}"))
        }),
        t("exchange_stream", "zero_column_exchange", |c| {
            let mut session = c.client.exchange_zero_columns()?;
            let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
            for _ in 0..100 {
                let out = session.exchange(&empty)?;
                eq(out.num_columns(), 0)?;
                eq(out.num_rows(), 0)?;
            }
            session.close()?;
            Ok("100".into())
        }),
        t("exchange_stream", "zero_row_input", |c| {
            let mut session = c.client.exchange_scale(2.0)?;
            let out = session.exchange(&value_batch(&[]))?;
            eq(out.num_rows(), 0)?;
            session.close()?;
            Ok("0 rows".into())
        }),
        t("exchange_stream", "cast_int32_to_float64", |c| {
            let mut session = c.client.exchange_cast_compatible()?;
            let out = session.exchange(&single_column("value", Arc::new(Int32Array::from(vec![1, 2, 3]))))?;
            eq(column(&out, "value")?.data_type(), &DataType::Float64)?;
            let values = floats(&out, "value")?;
            eq(values.clone(), vec![1.0, 2.0, 3.0])?;
            session.close()?;
            Ok(format!("{values:?}"))
        }),
        t("exchange_stream", "cast_int64_to_float64", |c| {
            let mut session = c.client.exchange_cast_compatible()?;
            let out = session.exchange(&single_column("value", Arc::new(Int64Array::from(vec![10, 20, 30]))))?;
            eq(column(&out, "value")?.data_type(), &DataType::Float64)?;
            let values = floats(&out, "value")?;
            eq(values.clone(), vec![10.0, 20.0, 30.0])?;
            session.close()?;
            Ok(format!("{values:?}"))
        }),
        t("exchange_stream", "cast_float32_to_float64", |c| {
            let mut session = c.client.exchange_cast_compatible()?;
            let out = session.exchange(&single_column("value", Arc::new(Float32Array::from(vec![1.5, 2.5, 3.5]))))?;
            eq(column(&out, "value")?.data_type(), &DataType::Float64)?;
            let values = floats(&out, "value")?;
            eq(values.clone(), vec![1.5, 2.5, 3.5])?;
            session.close()?;
            Ok(format!("{values:?}"))
        }),
        t("exchange_stream", "cast_exact_schema", |c| {
            let mut session = c.client.exchange_cast_compatible()?;
            let values = floats(&session.exchange(&value_batch(&[5.0, 10.0]))?, "value")?;
            eq(values.clone(), vec![5.0, 10.0])?;
            session.close()?;
            Ok(format!("{values:?}"))
        }),
        t("exchange_stream", "cast_incompatible_column_name", |c| {
            let mut session = c.client.exchange_cast_compatible()?;
            let (kind, message) = remote(session.exchange(&single_column("wrong", Arc::new(Float64Array::from(vec![1.0])))))?;
            let text = format!("{kind}: {message}");
            check!(text.contains("TypeError") || text.to_lowercase().contains("type"), "error {text:?}");
            Ok(kind)
        }),
        // Exchange headers.
        t("exchange_header", "header_then_exchange", |c| {
            let mut session = c.client.exchange_with_header(2.0)?;
            let header = session.header().clone();
            check!(header.description.contains("2.0"), "header {header:?}");
            approx(float(&session.exchange(&value_batch(&[5.0]))?, "value", 0)?, 10.0)?;
            session.close()?;
            Ok(format!("{header:?}"))
        }),
    ]
}
