//! Reading a reply's headers as text.

use super::reply::Reply;

impl Reply {
    /// Header `name`, if the reply has it and it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name).and_then(|v| v.to_str().ok())
    }
}
