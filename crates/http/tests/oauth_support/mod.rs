//! What the OAuth 2.0 PKCE tests share: a mock authorization server, a
//! server logging browsers in at it, and a browser's side of the login.

pub(crate) mod browser;
pub(crate) mod idp;
pub(crate) mod server;
