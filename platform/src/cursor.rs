//! Opaque cursors: clients must not build or parse them, so the position they carry is
//! wrapped in a prefix and base64. The prefix keeps a cursor of one list from being
//! accepted by another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor;

impl Cursor {
    pub fn encode(kind: &str, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{kind}:{value}"))
    }

    /// Returns the value part when the cursor is well formed and of the expected kind.
    pub fn decode(kind: &str, cursor: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (k, v) = text.split_once(':')?;
        (k == kind).then(|| v.to_owned())
    }

    pub fn encode_position(kind: &str, position: i64) -> String {
        Self::encode(kind, &position.to_string())
    }

    pub fn decode_position(kind: &str, cursor: &str) -> Option<i64> {
        Self::decode(kind, cursor)?
            .parse()
            .ok()
            .filter(|p: &i64| *p >= 0)
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn round_trips_and_rejects_other_kinds() {
        let c = Cursor::encode_position("event", 42);
        assert_eq!(Cursor::decode_position("event", &c), Some(42));
        assert_eq!(Cursor::decode_position("purchase", &c), None);
        assert_eq!(Cursor::decode_position("event", "not base64!"), None);
    }
}
