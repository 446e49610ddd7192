//! The domain of the authenticator that accepted a caller.

use super::caller::Caller;

impl Caller {
    pub(crate) fn domain(&self) -> &str {
        self.part(0)
    }
}
