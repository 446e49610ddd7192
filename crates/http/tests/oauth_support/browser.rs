//! A browser's side of the login: the `Accept` header that marks it, the
//! cookies it is set, and the redirect that starts a login.

use std::net::SocketAddr;

use http::StatusCode;

use super::idp::form;
use super::server::get;
use crate::common::reply::Reply;

/// The `Set-Cookie` value for cookie `name`.
pub(crate) fn set_cookie<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", reply.headers()))
}

/// The value part of a `Set-Cookie`.
fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .unwrap()
        .1
}

pub(crate) const BROWSER: (&str, &str) = ("accept", "text/html,application/xhtml+xml");

/// A login started by a browser at `path`: the authorization URL's query
/// and the session cookie.
pub(crate) async fn start_login(addr: SocketAddr, path: &str) -> (Vec<(String, String)>, String) {
    let reply = get(addr, path, &[BROWSER]).await;
    assert_eq!(reply.status(), StatusCode::FOUND, "{:?}", reply.body());
    let location = reply.header("location").unwrap();
    let (_, query) = location.split_once('?').unwrap();
    let session = cookie_value(set_cookie(&reply, "_vgi_oauth_session")).to_owned();
    (form(query), session)
}
