//! Writing JSON text by hand, for the two places the gateway produces it in bulk: shaped
//! responses and entity representations.
//!
//! Strings dominate a response's size (names, descriptions, review bodies), and serde_json
//! escapes them a byte at a time through a lookup table. Text almost never needs escaping, so
//! this writer checks eight bytes at a time for the three things that do (`"`, `\` and
//! control characters) and copies clean runs whole.

use crate::json::Json;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when some byte of `chunk` is `"`, `\` or below 0x20. May also be true for a clean
/// chunk in rare carry cases; the caller then checks byte by byte, so that is harmless.
#[inline]
fn needs_escape(chunk: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGHS;
    (control | has_zero(chunk ^ (ONES * b'"' as u64)) | has_zero(chunk ^ (ONES * b'\\' as u64)))
        != 0
}

fn escape(byte: u8, out: &mut Vec<u8>) {
    match byte {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        }
    }
}

/// Writes `text` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    write_utf8(out, text.as_bytes())
}

/// Writes UTF-8 text (given as its bytes) as a JSON string, quotes included.
pub fn write_utf8(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean_from = 0;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if needs_escape(u64::from_le_bytes(word)) {
            for (offset, &byte) in chunk.iter().enumerate() {
                if byte < 0x20 || byte == b'"' || byte == b'\\' {
                    out.extend_from_slice(&bytes[clean_from..at + offset]);
                    escape(byte, out);
                    clean_from = at + offset + 1;
                }
            }
        }
        at += 8;
    }
    // The tail is checked as one padded word too: short strings (ids, names) are the common
    // case and would otherwise be checked byte by byte.
    let tail = chunks.remainder();
    let mut word = [b'a'; 8];
    word[..tail.len()].copy_from_slice(tail);
    if needs_escape(u64::from_le_bytes(word)) {
        for (offset, &byte) in tail.iter().enumerate() {
            if byte < 0x20 || byte == b'"' || byte == b'\\' {
                out.extend_from_slice(&bytes[clean_from..at + offset]);
                escape(byte, out);
                clean_from = at + offset + 1;
            }
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

/// Writes a merged-data value (see [`Json`]).
pub fn write_json(out: &mut Vec<u8>, value: &Json) {
    match value {
        Json::String(text) => write_utf8(out, text.as_bytes()),
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Json::Object(object) => {
            out.push(b'{');
            for (i, (key, item)) in object.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_utf8(out, key.as_bytes());
                out.push(b':');
                write_json(out, item);
            }
            out.push(b'}');
        }
        Json::Number(number) => {
            // A number prints without fail; keep the output valid if that ever changes.
            if serde_json::to_writer(&mut *out, number).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_match_serde_json() {
        let long = "Lorem ipsum dolor sit amet, \"quoted\" and back\\slash\nnew line";
        let samples = [
            "",
            "a",
            "plain text longer than eight bytes",
            "tab\there",
            long,
            "ünïcödé and emoji 🎟️ mixed with \u{1} control",
            "\u{7f}\u{80}\u{ff}",
            "\"\"\"\"\"\"\"\"\"",
            "exactly8",
            "\\\\\\\\\\\\\\\\",
        ];
        for sample in samples {
            assert_eq!(
                written(sample),
                serde_json::to_string(sample).unwrap(),
                "{sample:?}"
            );
        }
        // Every single byte below 0x80, at every position of a chunk.
        for byte in 0u8..0x80 {
            for position in 0..10 {
                let mut text = "x".repeat(position);
                text.push(char::from(byte));
                text.push_str("tail bytes");
                assert_eq!(written(&text), serde_json::to_string(&text).unwrap());
            }
        }
    }

    #[test]
    fn values_match_serde_json() {
        let value = serde_json::json!({
            "a": [1, -2.5, true, false, null, "x\"y"],
            "b": { "c": 18446744073709551615u64 }
        });
        let mut out = Vec::new();
        write_json(&mut out, &Json::from(value.clone()));
        assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
    }
}
