//! A test case: its category, name and body, and the transports it
//! does not apply to.

use vgirpc::client::Transport;

use super::checks::Observed;
use super::connection::Ctx;
use super::servers::TransportKind;

/// A test body, and the transports it does not apply to.
pub(super) type Run<T> = fn(&mut Ctx<'_, T>) -> Observed;

pub(super) enum Body<T: Transport> {
    /// Runs, except where the function gives a reason not to.
    Run(Run<T>, fn(TransportKind) -> Option<&'static str>),
    /// Applies to no transport this suite has.
    Skip(&'static str),
}

pub(super) struct TestCase<T: Transport> {
    category: &'static str,
    name: &'static str,
    pub(super) body: Body<T>,
}

impl<T: Transport> TestCase<T> {
    pub(super) fn full_name(&self) -> String {
        format!("{}.{}", self.category, self.name)
    }

    /// The same test, not run over HTTP.
    pub(super) fn not_over_http(mut self) -> Self {
        if let Body::Run(body, _) = self.body {
            self.body = Body::Run(body, |transport| {
                (transport.family() == "http").then_some(
                    "over HTTP sessions are real: tests/client_transports.rs checks them \
                     against both sticky servers",
                )
            });
        }
        self
    }
}

pub(super) fn t<T: Transport>(
    category: &'static str,
    name: &'static str,
    body: Run<T>,
) -> TestCase<T> {
    TestCase {
        category,
        name,
        body: Body::Run(body, |_| None),
    }
}

pub(super) fn http_only<T: Transport>(name: &'static str) -> TestCase<T> {
    TestCase {
        category: "http_response_cap",
        name,
        body: Body::Skip("needs an HTTP server with response caps"),
    }
}
