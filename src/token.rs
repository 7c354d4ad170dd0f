//! Parsing of compact JWS tokens ([RFC 7515 §7.1](https://www.rfc-editor.org/rfc/rfc7515#section-7.1)).
//!
//! [`parse_token`] checks syntax only: size, three segments, canonical base64url and the
//! JOSE header. The claims are decoded from base64url but not parsed as JSON until the
//! signature has been verified, so unauthenticated input reaches the JSON parser only in
//! the header. [`inspect_token`] parses both without any check and must never be used to
//! authorize anything.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::error::{ParseError, Segment};
use crate::json;

/// Default maximum token length in bytes, checked before any decoding.
///
/// Access tokens are usually under 2 KiB; headers with `x5c` certificate chains reach
/// about 9 KiB. Policies may raise it up to [`MAX_TOKEN_BYTES_LIMIT`].
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Highest value a policy may set for the maximum token length; Envoy's default limit
/// for all request headers together is 60 KiB.
pub const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;

/// Longest `kid` used for key lookup; a longer one cannot match any key.
pub const MAX_KID_BYTES: usize = 1024;

/// A JOSE header ([RFC 7515 §4](https://www.rfc-editor.org/rfc/rfc7515#section-4)).
///
/// Only members this crate acts on are typed. Key-carrying members (`jwk`, `jku`, `x5u`,
/// `x5c`, `x5t`) stay in [`Header::other`] and are never used to choose or build a key.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// `alg`, compared case-sensitively with the policy's allowlist.
    pub alg: String,
    /// `kid`, an opaque lookup string.
    pub kid: Option<String>,
    /// `typ`, the media type of the whole JWS.
    pub typ: Option<String>,
    /// `cty`, the media type of the payload.
    pub cty: Option<String>,
    /// Every other member, untouched.
    pub other: Map<String, Value>,
}

impl Header {
    /// Parses a decoded header.
    ///
    /// # Errors
    ///
    /// [`ParseError::Header`] for invalid JSON, duplicate members, a missing or non-string
    /// `alg`, or a non-string `kid`, `typ` or `cty`; [`ParseError::UnsupportedCritical`]
    /// when `crit` is present or `b64` is `false`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut map = json::parse_object(bytes).map_err(|reason| ParseError::Header { reason })?;
        let alg = match map.remove("alg") {
            Some(Value::String(alg)) => alg,
            Some(other) => {
                return Err(header_error(alloc::format!(
                    "`alg` must be a string, found {}",
                    json::kind(&other)
                )));
            }
            None => return Err(header_error("`alg` is missing".to_string())),
        };
        let kid = optional_string(&mut map, "kid")?;
        let typ = optional_string(&mut map, "typ")?;
        let cty = optional_string(&mut map, "cty")?;

        // No JWS extension is implemented, so any critical extension makes the token
        // invalid (RFC 7515 §4.1.11), including `crit: []`, which is itself invalid.
        if let Some(crit) = map.get("crit") {
            let names = match crit {
                Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(name) => name.clone(),
                        other => alloc::format!("<{}>", json::kind(other)),
                    })
                    .collect(),
                other => alloc::vec![alloc::format!("<{}>", json::kind(other))],
            };
            return Err(ParseError::UnsupportedCritical { names });
        }
        // RFC 7797 unencoded payloads change what the signature covers.
        if let Some(b64) = map.get("b64") {
            if b64 != &Value::Bool(true) {
                return Err(ParseError::UnsupportedCritical { names: alloc::vec!["b64".to_string()] });
            }
        }
        if let Some(cty) = &cty {
            if cty.eq_ignore_ascii_case("jwt") {
                return Err(header_error("nested JWTs (`cty: JWT`) are not supported".to_string()));
            }
        }
        Ok(Self { alg, kid, typ, cty, other: map })
    }
}

fn header_error(reason: String) -> ParseError {
    ParseError::Header { reason }
}

fn optional_string(map: &mut Map<String, Value>, name: &str) -> Result<Option<String>, ParseError> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(other) => Err(header_error(alloc::format!(
            "`{name}` must be a string, found {}",
            json::kind(&other)
        ))),
    }
}

/// A token whose syntax was checked and whose signature was not.
///
/// Only [`crate::verify::Verifier::verify`] turns it into a
/// [`crate::verify::VerifiedToken`].
#[derive(Clone, Debug)]
pub struct UntrustedToken<'a> {
    signing_input: &'a str,
    header: Header,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> UntrustedToken<'a> {
    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bytes the signature covers: `BASE64URL(header) "." BASE64URL(payload)`.
    pub fn signing_input(&self) -> &'a str {
        self.signing_input
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The decoded payload, not yet parsed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Takes the parsed header, for the verified token once every check passed.
    pub(crate) fn into_header(self) -> Header {
        self.header
    }
}

/// Parses a compact JWS, checking its length before any decoding.
///
/// Checks: `token.len() <= max_bytes`; exactly three segments; each segment canonical
/// unpadded base64url (no padding, no `+` or `/`, no whitespace, zero trailing bits);
/// the header a JSON object with a string `alg`, no duplicate members, no `crit`.
/// Does NOT check the algorithm, the key, the signature or any claim.
///
/// # Errors
///
/// [`ParseError`] naming the first failed check.
pub fn parse_token(token: &str, max_bytes: usize) -> Result<UntrustedToken<'_>, ParseError> {
    if token.len() > max_bytes {
        return Err(ParseError::TooLarge { actual: token.len(), max: max_bytes });
    }
    let (header_b64, payload_b64, signature_b64) = split(token)?;
    let header_bytes = decode(header_b64, Segment::Header)?;
    let payload = decode(payload_b64, Segment::Payload)?;
    let signature = decode(signature_b64, Segment::Signature)?;
    let header = Header::from_json(&header_bytes)?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    Ok(UntrustedToken { signing_input, header, payload, signature })
}

fn split(token: &str) -> Result<(&str, &str, &str), ParseError> {
    let mut parts = token.splitn(4, '.');
    let header = parts.next().unwrap_or_default();
    let payload = parts.next();
    let signature = parts.next();
    match (payload, signature, parts.next()) {
        (Some(payload), Some(signature), None) if !header.is_empty() && !payload.is_empty() => {
            Ok((header, payload, signature))
        }
        (Some(_), Some(_), None) => Err(ParseError::Malformed { segments: 3 }),
        (Some(_), Some(_), Some(_)) => Err(ParseError::Malformed { segments: 4 }),
        (Some(_), None, _) => Err(ParseError::Malformed { segments: 2 }),
        (None, _, _) => Err(ParseError::Malformed { segments: usize::from(!token.is_empty()) }),
    }
}

/// Decodes canonical unpadded base64url ([RFC 7515 §2](https://www.rfc-editor.org/rfc/rfc7515#section-2)).
pub(crate) fn decode(segment: &str, which: Segment) -> Result<Vec<u8>, ParseError> {
    decode_base64url(segment.as_bytes()).ok_or(ParseError::Base64 { segment: which })
}

/// Marks bytes outside the base64url alphabet in [`BASE64URL_VALUES`]; its high bit is set,
/// and no value of the alphabet has it.
const NOT_BASE64URL: u8 = 0xff;

/// The 6-bit value of each byte of the base64url alphabet, [`NOT_BASE64URL`] for the rest.
#[allow(clippy::indexing_slicing, reason = "evaluated at compile time: an index out of range fails the build")]
static BASE64URL_VALUES: [u8; 256] = {
    let mut table = [NOT_BASE64URL; 256];
    let mut index = 0;
    while index < 26 {
        table[b'A' as usize + index] = index as u8;
        table[b'a' as usize + index] = 26 + index as u8;
        if index < 10 {
            table[b'0' as usize + index] = 52 + index as u8;
        }
        index += 1;
    }
    table[b'-' as usize] = 62;
    table[b'_' as usize] = 63;
    table
};

/// Decodes canonical unpadded base64url: only the URL-safe alphabet, no padding, not one
/// character left over, and zero bits after the last whole byte. It accepts exactly what
/// `base64ct`'s `Base64UrlUnpadded` accepts, which the tests check. Unlike `base64ct` it is
/// not constant-time: a token is not a secret from the party that sends it, and a table
/// lookup per character is several times faster.
#[allow(clippy::indexing_slicing, reason = "a `u8` always indexes a 256-entry table")]
fn decode_base64url(text: &[u8]) -> Option<Vec<u8>> {
    let value = |byte: u8| u32::from(BASE64URL_VALUES[usize::from(byte)]);
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut chunks = text.chunks_exact(4);
    for chunk in &mut chunks {
        let &[a, b, c, d] = chunk else { return None };
        let (a, b, c, d) = (value(a), value(b), value(c), value(d));
        if (a | b | c | d) & 0x80 != 0 {
            return None;
        }
        let bits = a << 18 | b << 12 | c << 6 | d;
        let [_, first, second, third] = bits.to_be_bytes();
        out.extend_from_slice(&[first, second, third]);
    }
    match *chunks.remainder() {
        [] => {}
        [a, b] => {
            let (a, b) = (value(a), value(b));
            // Twelve bits: one byte, then four bits that must be zero.
            if (a | b) & 0x80 != 0 || b & 0x0f != 0 {
                return None;
            }
            let [_, _, _, byte] = (a << 2 | b >> 4).to_be_bytes();
            out.push(byte);
        }
        [a, b, c] => {
            let (a, b, c) = (value(a), value(b), value(c));
            // Eighteen bits: two bytes, then two bits that must be zero.
            if (a | b | c) & 0x80 != 0 || c & 0x03 != 0 {
                return None;
            }
            let [_, _, first, second] = (a << 10 | b << 4 | c >> 2).to_be_bytes();
            out.extend_from_slice(&[first, second]);
        }
        _ => return None,
    }
    Some(out)
}

/// Header and claims of a token, decoded without any check.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectedToken {
    /// The whole header as JSON.
    pub header: Map<String, Value>,
    /// The whole claims set as JSON.
    pub claims: Map<String, Value>,
}

/// Decodes a token's header and claims WITHOUT verifying anything.
///
/// Never authorize a request with the result: anyone can write a token that decodes.
/// Use it to show a token to a person, or to read `exp` for refresh timing on the client.
/// It rejects what cannot be decoded (size, segments, base64url, JSON, duplicate members)
/// but ignores `alg`, `crit`, the signature and every claim's value.
///
/// # Errors
///
/// [`ParseError`] when the token cannot be decoded.
pub fn inspect_token(token: &str, max_bytes: usize) -> Result<InspectedToken, ParseError> {
    if token.len() > max_bytes {
        return Err(ParseError::TooLarge { actual: token.len(), max: max_bytes });
    }
    let (header_b64, payload_b64, signature_b64) = split(token)?;
    let header_bytes = decode(header_b64, Segment::Header)?;
    let payload = decode(payload_b64, Segment::Payload)?;
    decode(signature_b64, Segment::Signature)?;
    let header = json::parse_object(&header_bytes).map_err(|reason| ParseError::Header { reason })?;
    let claims = json::parse_object(&payload).map_err(|reason| ParseError::Claims { reason })?;
    Ok(InspectedToken { header, claims })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64UrlUnpadded, Encoding};

    const RFC7515_A1: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn b64(text: &str) -> String {
        Base64UrlUnpadded::encode_string(text.as_bytes())
    }

    #[test]
    fn parses_rfc7515_a1() {
        let token = parse_token(RFC7515_A1, DEFAULT_MAX_TOKEN_BYTES).unwrap();
        assert_eq!(token.header().alg, "HS256");
        assert_eq!(token.header().typ.as_deref(), Some("JWT"));
        assert_eq!(token.signature().len(), 32);
        assert!(RFC7515_A1.starts_with(token.signing_input()));
    }

    #[test]
    fn size_checked_before_decoding() {
        let huge = "a.".repeat(1_000_000) + "b";
        let error = parse_token(&huge, DEFAULT_MAX_TOKEN_BYTES).unwrap_err();
        assert!(matches!(error, ParseError::TooLarge { .. }));
    }

    #[test]
    fn segment_counts() {
        let header = b64(r#"{"alg":"none"}"#);
        assert_eq!(parse_token("", 100).unwrap_err(), ParseError::Malformed { segments: 0 });
        assert_eq!(parse_token("abc", 100).unwrap_err(), ParseError::Malformed { segments: 1 });
        let two = alloc::format!("{header}.e30");
        assert_eq!(parse_token(&two, 100).unwrap_err(), ParseError::Malformed { segments: 2 });
        let four = alloc::format!("{header}.e30.AA.AA");
        assert_eq!(parse_token(&four, 100).unwrap_err(), ParseError::Malformed { segments: 4 });
        let empty_payload = alloc::format!("{header}..AA");
        assert!(matches!(parse_token(&empty_payload, 100), Err(ParseError::Malformed { .. })));
    }

    #[test]
    fn segment_count_messages() {
        let message = |token: &str| parse_token(token, 100).unwrap_err().to_string();
        assert_eq!(message(""), "token is empty, expected three segments");
        assert_eq!(message("abc"), "token has one segment, expected three");
        assert_eq!(message("abc.def"), "token has two segments, expected three");
        assert_eq!(message("abc..AA"), "token has an empty header or payload segment");
        assert_eq!(message("a.b.c.d"), "token has more than three segments");
    }

    /// Compares [`decode_base64url`] with `base64ct` on one input.
    fn assert_decodes_like_base64ct(text: &[u8]) {
        let reference = core::str::from_utf8(text).ok().and_then(|text| Base64UrlUnpadded::decode_vec(text).ok());
        assert_eq!(decode_base64url(text), reference, "{:?}", String::from_utf8_lossy(text));
    }

    #[test]
    fn base64url_short_inputs_match_base64ct() {
        // Every input of up to three characters from the alphabet and its near misses.
        let characters: Vec<u8> = (b'A'..=b'Z').chain(b'a'..=b'z').chain(b'0'..=b'9').chain(*b"-_=+/ .\0\xff").collect();
        assert_decodes_like_base64ct(b"");
        for &a in &characters {
            assert_decodes_like_base64ct(&[a]);
            for &b in &characters {
                assert_decodes_like_base64ct(&[a, b]);
                for &c in &characters {
                    assert_decodes_like_base64ct(&[a, b, c]);
                }
            }
        }
    }

    #[test]
    fn base64url_long_inputs_match_base64ct() {
        // Encodings of pseudo-random bytes, each also with one character replaced.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let replacements = *b"AQgw_-=+/. ";
        for length in 0..64 {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..length).map(|_| next().to_le_bytes()[0]).collect();
                let encoded = Base64UrlUnpadded::encode_string(&bytes);
                assert_eq!(decode_base64url(encoded.as_bytes()), Some(bytes));
                if encoded.is_empty() {
                    continue;
                }
                let mut changed = encoded.into_bytes();
                let position = usize::try_from(next() % changed.len() as u64).unwrap();
                changed[position] = replacements[usize::try_from(next() % replacements.len() as u64).unwrap()];
                assert_decodes_like_base64ct(&changed);
                assert_decodes_like_base64ct(&changed[..changed.len() - 1]);
            }
        }
    }

    #[test]
    fn empty_signature_segment_parses() {
        let token = alloc::format!("{}.e30.", b64(r#"{"alg":"none"}"#));
        let parsed = parse_token(&token, 100).unwrap();
        assert!(parsed.signature().is_empty());
    }

    #[test]
    fn non_canonical_base64_rejected() {
        let (head, signature) = RFC7515_A1.rsplit_once('.').unwrap();
        let variants = [
            alloc::format!("{head}.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"),
            alloc::format!("{head}.{signature}="),
            alloc::format!("{head}.dBjftJeZ4CVP+mB92K27uhbUJU1p1r/wW1gFWFOEjXk"),
            alloc::format!("{head}.dBjftJeZ4CVP mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            alloc::format!("{head}.dBjftJeZ4CVP%3DmB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            alloc::format!("{head}.{signature}\n"),
            alloc::format!("{head}.{signature}AA"),
        ];
        for variant in &variants {
            let error = parse_token(variant, DEFAULT_MAX_TOKEN_BYTES).unwrap_err();
            assert_eq!(error, ParseError::Base64 { segment: Segment::Signature }, "{variant}");
        }
    }

    #[test]
    fn header_shape_errors() {
        let cases = [
            (r#"{"typ":"JWT"}"#, "`alg` is missing"),
            (r#"{"alg":1}"#, "`alg` must be a string"),
            (r#"{"alg":"RS256","kid":123}"#, "`kid` must be a string"),
            (r#"{"alg":"RS256","kid":null}"#, "`kid` must be a string"),
            (r#"{"alg":"RS256","kid":["a"]}"#, "`kid` must be a string"),
            (r#"{"alg":"RS256","alg":"none"}"#, "duplicate member"),
            (r#"{"alg":"RS256","cty":"JWT"}"#, "nested JWTs"),
        ];
        for (header, expected) in cases {
            let token = alloc::format!("{}.e30.AA", b64(header));
            match parse_token(&token, 1000) {
                Err(ParseError::Header { reason }) => assert!(reason.contains(expected), "{reason}"),
                other => panic!("{header}: {other:?}"),
            }
        }
    }

    #[test]
    fn crit_always_rejected() {
        for header in [
            r#"{"alg":"RS256","crit":["exp-policy"],"exp-policy":"mfa"}"#,
            r#"{"alg":"RS256","crit":["b64"],"b64":false}"#,
            r#"{"alg":"RS256","crit":[]}"#,
            r#"{"alg":"RS256","crit":["alg"]}"#,
            r#"{"alg":"RS256","crit":"foo"}"#,
            r#"{"alg":"RS256","crit":["foo","foo"]}"#,
            r#"{"alg":"RS256","b64":false}"#,
        ] {
            let token = alloc::format!("{}.e30.AA", b64(header));
            let error = parse_token(&token, 1000).unwrap_err();
            assert!(matches!(error, ParseError::UnsupportedCritical { .. }), "{header}");
        }
    }

    #[test]
    fn inspect_reads_claims_without_checks() {
        let inspected = inspect_token(RFC7515_A1, DEFAULT_MAX_TOKEN_BYTES).unwrap();
        assert_eq!(inspected.claims["iss"], "joe");
        assert_eq!(inspected.header["alg"], "HS256");
    }
}
