//! Strict JSON for untrusted input: duplicate member names and deep nesting are errors.
//!
//! `serde_json::Value` keeps the last of two members with the same name, so two parsers
//! can read different claims from one token. [RFC 7515 §5.2](https://www.rfc-editor.org/rfc/rfc7515#section-5.2)
//! allows a JWS to be rejected for duplicate header names, and this crate does so for the
//! header, the claims and JWKS documents alike.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and objects accepted, counting the outermost object as 1.
///
/// Real claims nest two or three levels (`resource_access.client.roles`). The limit keeps
/// recursion far inside the 1 MiB stack of a Rust wasm module; serde_json itself stops
/// at 128.
pub const MAX_DEPTH: usize = 100;

/// Parses `bytes` as a JSON object with no duplicate member names and at most
/// [`MAX_DEPTH`] levels of nesting.
///
/// # Errors
///
/// Returns a short lowercase message for invalid JSON, a value that is not an object,
/// a duplicate name or too deep nesting.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let value = parse_value(bytes).map_err(|error| describe(&error))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected a JSON object, found {}", kind(&other))),
    }
}

/// Parses `bytes` as one JSON value with no duplicate member names and at most
/// [`MAX_DEPTH`] levels of nesting.
///
/// # Errors
///
/// serde_json's error, with the position where parsing stopped.
pub fn parse_value(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue { depth: 1 }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Returns the path (`providers.idp.audience`, `rules[0].requires`) of the member or
/// element that a parser at `line` and `column` was reading, or an empty string at the top
/// level. serde_json's errors report that position, with `column` counting the bytes of the
/// line read so far.
///
/// The scan follows only brackets, commas, colons and strings, so it gives a path for any
/// prefix of a document, valid or not. Escapes in member names are left as written.
pub fn path_at(bytes: &[u8], line: usize, column: usize) -> String {
    let line_start = bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(line.saturating_sub(2))
        .map_or(0, |(index, _)| index + 1);
    let end = if line <= 1 { column } else { line_start.saturating_add(column) }.min(bytes.len());

    let mut stack: Vec<PathFrame> = Vec::new();
    let mut index = 0;
    while index < end {
        match bytes.get(index).copied().unwrap_or_default() {
            b'{' => stack.push(PathFrame::Object { key: None, expecting_key: true }),
            b'[' => stack.push(PathFrame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(PathFrame::Object { expecting_key, .. }) => *expecting_key = true,
                Some(PathFrame::Array { index }) => *index += 1,
                None => {}
            },
            b':' => {
                if let Some(PathFrame::Object { expecting_key, .. }) = stack.last_mut() {
                    *expecting_key = false;
                }
            }
            b'"' => {
                let start = index + 1;
                index += 1;
                while index < end && bytes.get(index) != Some(&b'"') {
                    // Skip the escaped character, which may be a quote.
                    index += if bytes.get(index) == Some(&b'\\') { 2 } else { 1 };
                }
                if let Some(PathFrame::Object { key, expecting_key: true }) = stack.last_mut() {
                    let name = bytes.get(start..index.min(end)).unwrap_or_default();
                    *key = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            _ => {}
        }
        index += 1;
    }

    let mut path = String::new();
    for frame in &stack {
        match frame {
            PathFrame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            PathFrame::Object { key: None, .. } => {}
            PathFrame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Returns a serde error message without the configuration values it quotes, so that a
/// secret written where a number or another type belongs never reaches a log.
///
/// serde quotes the value in `invalid type: integer `5`, expected ...`, `invalid value:
/// string "x", expected ...` and `unknown variant `x`, expected ...`. The value's kind
/// stays, as in `invalid type: integer, expected a string`. Field names and expected types
/// stay too, because they come from the program, not from the document.
pub fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((start, after)) = next_quoted_value(rest) {
        out.push_str(rest.get(..start).unwrap_or_default());
        rest = rest.get(after..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// Finds the next value that serde quotes after one of its markers: the byte range of
/// ` `value`` or ` "value"` (with the space before it) in `text`.
fn next_quoted_value(text: &str) -> Option<(usize, usize)> {
    const MARKERS: [&str; 3] = ["invalid type: ", "invalid value: ", "unknown variant"];
    let (marker_at, marker) = MARKERS.iter().filter_map(|marker| text.find(marker).map(|at| (at, *marker))).min()?;
    let from = marker_at + marker.len();
    // The kind (`integer`, `floating point`, `string`) runs up to the quoted value; serde
    // puts the value right after a space.
    let bytes = text.as_bytes();
    let tail = bytes.get(from..)?;
    let quote_at = from + tail.iter().position(|byte| matches!(byte, b'`' | b'"' | b',')).unwrap_or(tail.len());
    let start = if quote_at > from && bytes.get(quote_at - 1) == Some(&b' ') { quote_at - 1 } else { quote_at };
    let value = bytes.get(quote_at + 1..).unwrap_or_default();
    match bytes.get(quote_at) {
        Some(b'`') => {
            // Integers, floats, booleans and characters print as `value`. Only the
            // character '`' contains a backtick, and then one backtick stays behind.
            let close = value.iter().position(|&byte| byte == b'`').map_or(text.len(), |at| quote_at + at + 2);
            Some((start, close))
        }
        Some(b'"') => {
            // Strings print with Rust's escapes, so a quote inside is `\"`.
            let mut escaped = false;
            for (offset, byte) in value.iter().enumerate() {
                match byte {
                    b'\\' if !escaped => escaped = true,
                    b'"' if !escaped => return Some((start, quote_at + offset + 2)),
                    _ => escaped = false,
                }
            }
            Some((start, text.len()))
        }
        // No quoted value after this marker: look after it.
        _ => next_quoted_value(text.get(from..)?).map(|(start, end)| (from + start, from + end)),
    }
}

/// One open object or array while [`path_at`] scans.
enum PathFrame {
    /// The member name read last, and whether the next string is a member name.
    Object { key: Option<String>, expecting_key: bool },
    /// The index of the current element.
    Array { index: usize },
}

/// Returns the JSON kind of a value, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(error: &serde_json::Error) -> String {
    // serde_json's messages already name the position; drop its capitalisation habits.
    let text = error.to_string();
    if text.contains("recursion limit") {
        return format!("JSON is nested more than {MAX_DEPTH} levels deep");
    }
    text
}

struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue { depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let depth = self.nested()?;
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            // One search of the map finds a duplicate and the place for a new member.
            match map.entry(name) {
                Entry::Occupied(member) => {
                    return Err(de::Error::custom(format!(
                        "duplicate member {}",
                        crate::error::Quoted(member.key())
                    )));
                }
                Entry::Vacant(slot) => {
                    slot.insert(access.next_value_seed(StrictValue { depth })?);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

impl StrictValue {
    fn nested<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth > MAX_DEPTH {
            Err(E::custom(format!("JSON is nested more than {MAX_DEPTH} levels deep")))
        } else {
            Ok(self.depth + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn nested(depth: usize) -> String {
        // depth 1 is `{"x":0}`; each further level wraps the value in an array.
        let mut text = String::from("{\"x\":");
        for _ in 1..depth {
            text.push('[');
        }
        text.push('0');
        for _ in 1..depth {
            text.push(']');
        }
        text.push('}');
        text
    }

    #[test]
    fn without_values_keeps_kinds_and_expectations() {
        let cases = [
            ("invalid type: integer `804613977251`, expected a string at line 1 column 9", "invalid type: integer, expected a string at line 1 column 9"),
            ("invalid type: string \"s3cret\", expected u64", "invalid type: string, expected u64"),
            ("invalid value: string \"a \\\" b, expected c\", expected d", "invalid value: string, expected d"),
            ("invalid type: floating point `1.5`, expected u64", "invalid type: floating point, expected u64"),
            ("invalid type: boolean `true`, expected a string", "invalid type: boolean, expected a string"),
            ("unknown variant `s3cret`, expected `exact` or `prefix`", "unknown variant, expected `exact` or `prefix`"),
            ("invalid type: sequence, expected a string", "invalid type: sequence, expected a string"),
            ("unknown field `audience`, expected one of `issuer`", "unknown field `audience`, expected one of `issuer`"),
            ("invalid type: map, expected u64; invalid type: integer `7`, expected a string", "invalid type: map, expected u64; invalid type: integer, expected a string"),
            ("invalid type: string \"unterminated", "invalid type: string"),
            ("EOF while parsing a string at line 1 column 5", "EOF while parsing a string at line 1 column 5"),
        ];
        for (message, expected) in cases {
            assert_eq!(without_values(message), expected, "{message}");
        }
    }

    #[test]
    fn path_at_follows_members_and_elements() {
        let document = br#"{"providers": {"idp": {"algorithms": ["RS256", "x"], "audience": 1}}, "rules": [{}, {"requires": 2}]}"#;
        let position = |needle: &str| {
            let text = core::str::from_utf8(document).unwrap();
            text.find(needle).unwrap() + needle.len()
        };
        assert_eq!(path_at(document, 1, 0), "");
        assert_eq!(path_at(document, 1, position(r#""x""#)), "providers.idp.algorithms[1]");
        assert_eq!(path_at(document, 1, position(r#""audience""#)), "providers.idp.audience");
        assert_eq!(path_at(document, 1, position(r#""requires": 2"#)), "rules[1].requires");
        assert_eq!(path_at(document, 1, document.len()), "");
        assert_eq!(path_at(document, 1, 10_000), "", "a column past the end stops at the end");
    }

    #[test]
    fn path_at_counts_lines_and_escapes() {
        let document = b"{\n  \"a\\\"b\": {\n    \"c\": [1,\n 2]}}";
        assert_eq!(path_at(document, 3, 10), "a\\\"b.c[0]");
        assert_eq!(path_at(document, 4, 2), "a\\\"b.c[1]");
    }

    #[test]
    fn duplicate_member_rejected() {
        let error = parse_object(br#"{"alg":"RS256","alg":"none"}"#).unwrap_err();
        assert!(error.contains("duplicate member `alg`"), "{error}");
    }

    #[test]
    fn duplicate_member_in_nested_object_rejected() {
        let error = parse_object(br#"{"a":{"b":1,"b":2}}"#).unwrap_err();
        assert!(error.contains("duplicate member `b`"), "{error}");
    }

    #[test]
    fn depth_limit_is_exact() {
        assert!(parse_object(nested(MAX_DEPTH).as_bytes()).is_ok());
        let error = parse_object(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(error.contains("nested more than"), "{error}");
    }

    #[test]
    fn very_deep_nesting_fails_without_overflow() {
        let error = parse_object(nested(7000).as_bytes()).unwrap_err();
        assert!(error.contains("nested more than"), "{error}");
    }

    #[test]
    fn non_objects_rejected() {
        for input in [&b"[\"a\"]"[..], b"\"x\"", b"1", b"null", b"not json", b"{\"sub\":\"u\"}xyz"] {
            assert!(parse_object(input).is_err(), "{:?}", core::str::from_utf8(input));
        }
    }

    #[test]
    fn byte_order_mark_rejected() {
        assert!(parse_object(b"\xef\xbb\xbf{}").is_err());
    }

    #[test]
    fn lone_surrogate_rejected() {
        assert!(parse_object(br#"{"a":"\ud800"}"#).is_err());
    }

    #[test]
    fn numbers_keep_their_kind() {
        let map = parse_object(br#"{"i":9007199254740993,"f":1.5,"n":-3}"#).unwrap();
        assert_eq!(map["i"].as_u64(), Some(9_007_199_254_740_993));
        assert_eq!(map["f"].as_f64(), Some(1.5));
        assert_eq!(map["n"].as_i64(), Some(-3));
    }
}
