//! Sticky-session methods on byte-stream transports.

use std::sync::Arc;

use arrow_array::Int64Array;
use vgirpc::client::Transport;

use crate::client_suite::case::{TestCase, t};
use crate::client_suite::checks::{collect, eq, remote, single_column};

#[rustfmt::skip]
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    vec![
        // Sticky sessions exist only over HTTP; on a pipe every session
        // method must fail cleanly and leave the connection usable.
        t("sticky_on_pipe", "open_counter", |c| {
            let (kind, message) = remote(c.client.open_counter(7))?;
            eq(c.client.echo_int(1)?, 1)?;
            Ok(format!("{kind}: {message}"))
        }).not_over_http(),
        t("sticky_on_pipe", "increment_counter", |c| {
            let (kind, message) = remote(c.client.increment_counter(10))?;
            Ok(format!("{kind}: {message}"))
        }).not_over_http(),
        t("sticky_on_pipe", "close_counter", |c| {
            let (kind, message) = remote(c.client.close_counter())?;
            Ok(format!("{kind}: {message}"))
        }).not_over_http(),
        t("sticky_on_pipe", "stream_session_counter", |c| {
            let result = collect(c.client.stream_session_counter(3)?);
            let (kind, message) = remote(result)?;
            eq(c.client.echo_int(2)?, 2)?;
            Ok(format!("{kind}: {message}"))
        }).not_over_http(),
        t("sticky_on_pipe", "exchange_session_counter", |c| {
            let mut session = c.client.exchange_session_counter()?;
            let by = single_column("by", Arc::new(Int64Array::from(vec![1])));
            let (kind, message) = remote(session.exchange(&by))?;
            drop(session);
            eq(c.client.echo_int(3)?, 3)?;
            Ok(format!("{kind}: {message}"))
        }).not_over_http(),
    ]
}
