//! The caller an accepted `whoami` names. Each part of it is read by a
//! method of its own, in its own module, so that a test binary includes
//! only the readings it makes.

use std::net::SocketAddr;

use http::StatusCode;

use super::request::whoami_at;
use crate::common::reply::Reply;

/// Calls `whoami` with `headers`.
pub(crate) async fn whoami(addr: SocketAddr, headers: &[(&str, &str)]) -> Reply {
    whoami_at(addr, "/whoami", headers).await
}

/// A caller as `whoami` reports it: `domain|principal|claims as JSON`.
#[derive(Debug)]
pub(crate) struct Caller(String);

impl Caller {
    /// Part `index` of the report.
    pub(crate) fn part(&self, index: usize) -> &str {
        self.0.splitn(3, '|').nth(index).unwrap()
    }

    pub(crate) fn principal(&self) -> &str {
        self.part(1)
    }
}

/// The caller an accepted `whoami` reply names; panics on any other reply.
pub(crate) fn caller(reply: &Reply) -> Caller {
    assert_eq!(
        reply.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(reply.body())
    );
    let batches = reply.batches();
    let column = batches.last().unwrap().batch.column(0).clone();
    let text = column
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap()
        .value(0)
        .to_owned();
    Caller(text)
}
