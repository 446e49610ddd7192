use std::fmt;

/// Length of a session id in bytes.
pub const SESSION_ID_LEN: usize = 12;

/// A session's identity: 12 random bytes, written as 24 lowercase hex
/// characters in logs and access records.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; SESSION_ID_LEN]);

impl SessionId {
    /// A fresh random id. 96 random bits make collisions between the
    /// sessions of one worker practically impossible.
    pub fn random() -> Self {
        let mut bytes = [0u8; SESSION_ID_LEN];
        rand::fill(&mut bytes);
        Self(bytes)
    }

    /// The id with these bytes (as carried in a session token).
    pub const fn from_bytes(bytes: [u8; SESSION_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; SESSION_ID_LEN] {
        &self.0
    }

    /// 24 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_render_as_24_hex_characters() {
        let id = SessionId::from_bytes([0xab; SESSION_ID_LEN]);
        assert_eq!(id.to_hex(), "ab".repeat(12));
        assert_eq!(format!("{id:?}"), format!("SessionId({})", "ab".repeat(12)));
        assert_ne!(SessionId::random(), SessionId::random());
        assert_eq!(SessionId::from_bytes(*id.as_bytes()), id);
    }
}
