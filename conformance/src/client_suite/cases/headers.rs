//! Rich headers and dynamic schemas of producers and exchanges.

use vgirpc::client::Transport;

use crate::client_suite::case::{TestCase, t};
use crate::client_suite::checks::{approx, collect, eq, float, int, names, text, value_batch};
use crate::client_suite::values::check_rich_header;
use crate::states::dynamic_schema;

#[rustfmt::skip]
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    vec![
        // Rich headers.
        t("rich_header_producer", "seed_42", |c| {
            let stream = c.client.produce_with_rich_header(42, 3)?;
            check_rich_header(stream.header(), 42)?;
            let batches = collect(stream)?;
            eq(batches.len(), 3)?;
            for (i, batch) in batches.iter().enumerate() {
                eq(int(batch, "index", 0)?, i as i64)?;
                eq(int(batch, "value", 0)?, i as i64 * 10)?;
            }
            Ok("seed 42, 3 batches".into())
        }),
        t("rich_header_producer", "seed_7", |c| {
            let stream = c.client.produce_with_rich_header(7, 2)?;
            check_rich_header(stream.header(), 7)?;
            eq(collect(stream)?.len(), 2)?;
            Ok("seed 7, 2 batches".into())
        }),
        t("rich_header_producer", "seed_0", |c| {
            let stream = c.client.produce_with_rich_header(0, 1)?;
            check_rich_header(stream.header(), 0)?;
            eq(collect(stream)?.len(), 1)?;
            Ok("seed 0, 1 batch".into())
        }),
        t("dynamic_schema_producer", "all_columns", |c| {
            let stream = c.client.produce_dynamic_schema(42, 3, true, true)?;
            check_rich_header(stream.header(), 42)?;
            let batches = collect(stream)?;
            eq(batches.len(), 3)?;
            let expected = dynamic_schema(true, true);
            for (i, batch) in batches.iter().enumerate() {
                eq(batch.schema_ref().fields(), expected.fields())?;
                eq(int(batch, "index", 0)?, i as i64)?;
                eq(text(batch, "label", 0)?, format!("row-{i}"))?;
                approx(float(batch, "score", 0)?, i as f64 * 1.5)?;
            }
            Ok(format!("{:?}", names(&batches[0])))
        }),
        t("dynamic_schema_producer", "strings_only", |c| {
            let stream = c.client.produce_dynamic_schema(7, 2, true, false)?;
            check_rich_header(stream.header(), 7)?;
            let batches = collect(stream)?;
            eq(batches.len(), 2)?;
            for (i, batch) in batches.iter().enumerate() {
                eq(names(batch), vec!["index".to_owned(), "label".to_owned()])?;
                eq(text(batch, "label", 0)?, format!("row-{i}"))?;
            }
            Ok(format!("{:?}", names(&batches[0])))
        }),
        t("dynamic_schema_producer", "floats_only", |c| {
            let stream = c.client.produce_dynamic_schema(5, 2, false, true)?;
            check_rich_header(stream.header(), 5)?;
            let batches = collect(stream)?;
            eq(batches.len(), 2)?;
            for (i, batch) in batches.iter().enumerate() {
                eq(names(batch), vec!["index".to_owned(), "score".to_owned()])?;
                approx(float(batch, "score", 0)?, i as f64 * 1.5)?;
            }
            Ok(format!("{:?}", names(&batches[0])))
        }),
        t("dynamic_schema_producer", "minimal", |c| {
            let stream = c.client.produce_dynamic_schema(0, 1, false, false)?;
            check_rich_header(stream.header(), 0)?;
            let batches = collect(stream)?;
            eq(batches.len(), 1)?;
            eq(names(&batches[0]), vec!["index".to_owned()])?;
            eq(int(&batches[0], "index", 0)?, 0)?;
            Ok(format!("{:?}", names(&batches[0])))
        }),
        t("rich_header_exchange", "header_then_exchange", |c| {
            let mut session = c.client.exchange_with_rich_header(5, 2.5)?;
            check_rich_header(session.header(), 5)?;
            approx(float(&session.exchange(&value_batch(&[4.0]))?, "value", 0)?, 10.0)?;
            session.close()?;
            Ok("seed 5".into())
        }),
        t("rich_header_exchange", "different_seed", |c| {
            let mut session = c.client.exchange_with_rich_header(12, 1.0)?;
            check_rich_header(session.header(), 12)?;
            approx(float(&session.exchange(&value_batch(&[7.0]))?, "value", 0)?, 7.0)?;
            session.close()?;
            Ok("seed 12".into())
        }),
    ]
}
