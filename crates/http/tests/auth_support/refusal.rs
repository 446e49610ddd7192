//! What a refused request is told.

use http::StatusCode;

use crate::common::reply::Reply;

/// A `401` reply's body.
pub(crate) fn refusal(reply: &Reply) -> String {
    assert_eq!(
        reply.status(),
        StatusCode::UNAUTHORIZED,
        "{:?}",
        reply.body()
    );
    String::from_utf8(reply.body().to_vec()).unwrap()
}
