//! The claims a caller was accepted with.

use serde_json::Value as Json;

use super::caller::Caller;

impl Caller {
    pub(crate) fn claims(&self) -> Json {
        serde_json::from_str(self.part(2)).unwrap()
    }
}
