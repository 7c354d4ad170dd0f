//! Bearer credentials in requests and `WWW-Authenticate` challenges
//! ([RFC 6750 §2.1 and §3](https://www.rfc-editor.org/rfc/rfc6750#section-2.1)).
//!
//! The auth-scheme is case-insensitive; the credential is one `b64token` after one or more
//! spaces, and nothing may follow it. Anything else in a `Bearer` header is malformed
//! (`invalid_request`, HTTP 400) rather than quietly trimmed, so that this hop and the
//! next one never read different tokens from the same header.

use alloc::string::String;

use crate::error::{Disposition, ErrorCode};

/// What a header value holds for a given scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// The header uses another scheme, or the scheme without a credential.
    Absent,
    /// The credential.
    Token(&'a str),
    /// The header uses this scheme but is not well formed.
    Malformed,
}

/// Whether `byte` may appear in a `b64token` before the trailing `=` padding.
const fn is_b64token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// Whether `text` is a `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Every request with a token scans the whole token, so the body is checked eight bytes
/// at a time ([`b64token_word`]); the last bytes one by one.
pub fn is_b64token(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    let mut words = body.as_bytes().chunks_exact(8);
    let words_valid = words.by_ref().all(|word| word.try_into().is_ok_and(|word| b64token_word(u64::from_le_bytes(word))));
    !body.is_empty() && words_valid && words.remainder().iter().all(|byte| is_b64token_char(*byte))
}

/// `0x01` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of every byte.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether all eight bytes of `word` are [`is_b64token_char`], with byte-wise arithmetic
/// in one 64-bit integer.
///
/// Once every byte is known to be below 0x80, adding `0x80 - low` to each byte sets its
/// high bit exactly when the byte is at least `low`, and no sum carries into the next
/// byte; [`bytes_in_range`] and [`bytes_equal`] rely on this.
fn b64token_word(word: u64) -> bool {
    if word & HIGH_BITS != 0 {
        return false;
    }
    // `+` `,` `-` `.` `/` `0`-`9`, without the comma.
    let symbols_and_digits = bytes_in_range(word, b'+', b'9') & !bytes_equal(word, b',');
    let letters = bytes_in_range(word, b'A', b'Z') | bytes_in_range(word, b'a', b'z');
    let others = bytes_equal(word, b'_') | bytes_equal(word, b'~');
    symbols_and_digits | letters | others == HIGH_BITS
}

/// Sets the high bit of each byte of `word` that is in `low..=high`, and clears the rest.
/// Every byte of `word` must be below 0x80, and `low` must be at least 1 and `high`
/// below 0x80.
fn bytes_in_range(word: u64, low: u8, high: u8) -> u64 {
    let at_least_low = word + ONES * u64::from(0x80 - low);
    let above_high = word + ONES * u64::from(0x7f - high);
    at_least_low & !above_high & HIGH_BITS
}

/// Sets the high bit of each byte of `word` equal to `value`, and clears the rest. Every
/// byte of `word` and `value` must be below 0x80.
fn bytes_equal(word: u64, value: u8) -> u64 {
    // Each byte of `difference` is below 0x80, and adding 0x7f sets its high bit unless it is 0.
    let difference = word ^ (ONES * u64::from(value));
    !(difference + ONES * 0x7f) & HIGH_BITS
}

/// Reads the credential of `scheme` (e.g. `Bearer`) from an `Authorization` header value.
///
/// Surrounding spaces and tabs are ignored, as HTTP field parsing removes them.
/// `Bearer` alone is [`Credential::Absent`]; `Bearer\tT`, `Bearer T junk` and
/// `Bearer T, Bearer T` are [`Credential::Malformed`].
pub fn parse_authorization<'a>(value: &'a str, scheme: &str) -> Credential<'a> {
    parse_authorization_checked_by(value, scheme, is_b64token)
}

/// Reads a credential as [`parse_authorization`] does, with `is_token` deciding whether
/// the credential is a `b64token`. The gate answers true without a scan for tokens its
/// cache holds, which all passed [`is_b64token`] before they were stored.
pub fn parse_authorization_checked_by<'a>(value: &'a str, scheme: &str, is_token: impl FnOnce(&'a str) -> bool) -> Credential<'a> {
    let value = value.trim_matches([' ', '\t']);
    let Some(head) = value.get(..scheme.len()) else { return Credential::Absent };
    if !head.eq_ignore_ascii_case(scheme) {
        return Credential::Absent;
    }
    let rest = &value[scheme.len()..];
    match rest.bytes().next() {
        None => Credential::Absent,
        Some(b' ') => {
            let token = rest.trim_start_matches(' ');
            if is_token(token) { Credential::Token(token) } else { Credential::Malformed }
        }
        // A tab or comma right after the scheme is this scheme, badly written.
        Some(b'\t' | b',') => Credential::Malformed,
        // `Bearerx ...` is another scheme.
        Some(_) => Credential::Absent,
    }
}

/// Reads a token from a header with a configured prefix (Envoy's `value_prefix`).
///
/// A prefix of the form `Scheme ` is parsed as an auth-scheme by [`parse_authorization`];
/// any other prefix must match exactly, and the rest must be a `b64token`. An empty prefix
/// takes the whole value.
pub fn parse_with_prefix<'a>(value: &'a str, prefix: &str) -> Credential<'a> {
    parse_with_prefix_checked_by(value, prefix, is_b64token)
}

/// Reads a token as [`parse_with_prefix`] does, with `is_token` deciding whether it is a
/// `b64token`, as in [`parse_authorization_checked_by`].
pub fn parse_with_prefix_checked_by<'a>(value: &'a str, prefix: &str, is_token: impl FnOnce(&'a str) -> bool) -> Credential<'a> {
    let scheme = prefix.strip_suffix(' ').unwrap_or("");
    if !scheme.is_empty() && scheme.bytes().all(crate::policy::is_token_char) {
        return parse_authorization_checked_by(value, scheme, is_token);
    }
    let value = value.trim_matches([' ', '\t']);
    match value.strip_prefix(prefix) {
        None => Credential::Absent,
        Some("") => Credential::Absent,
        Some(token) if is_token(token) => Credential::Token(token),
        Some(_) => Credential::Malformed,
    }
}

/// Longest `error_description` written into a challenge, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 200;

/// Copies `text` keeping only characters allowed in an RFC 6750 quoted value
/// (`%x20-21 / %x23-5B / %x5D-7E`): `"`, `\`, controls and non-ASCII become `?`.
pub fn sanitize_quoted(text: &str, max_bytes: usize) -> String {
    let mut out = String::new();
    for character in text.chars() {
        if out.len() >= max_bytes {
            break;
        }
        let allowed = matches!(character, '\u{20}'..='\u{7e}') && character != '"' && character != '\\';
        out.push(if allowed { character } else { '?' });
    }
    out
}

/// Copies a space-separated scope list keeping only `scope-token` characters
/// (`%x21 / %x23-5B / %x5D-7E`).
pub fn sanitize_scope(scope: &str) -> String {
    let mut out = String::new();
    for token in scope.split(' ').filter(|token| !token.is_empty()) {
        let clean: String = token
            .chars()
            .filter(|character| matches!(character, '\u{21}'..='\u{7e}') && *character != '"' && *character != '\\')
            .collect();
        if clean.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&clean);
    }
    out
}

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `Bearer` or `DPoP`.
    pub scheme: &'static str,
    /// The `realm` attribute.
    pub realm: Option<String>,
    /// The failure, if the request carried a credential.
    pub code: Option<ErrorCode>,
    /// The `error_description` attribute, before sanitising.
    pub description: Option<String>,
    /// The `scope` attribute for `insufficient_scope`.
    pub scope: Option<String>,
    /// The `algs` attribute of a DPoP challenge ([RFC 9449 §7.1](https://www.rfc-editor.org/rfc/rfc9449#section-7.1)).
    pub algs: Option<String>,
}

impl Challenge {
    /// A challenge for a request that failed with `code`, or carried no credential.
    pub fn bearer(realm: Option<&str>, code: Option<ErrorCode>) -> Self {
        Self { scheme: "Bearer", realm: realm.map(String::from), code, description: None, scope: None, algs: None }
    }

    /// The HTTP status of the reply that carries this challenge.
    pub fn status(&self) -> u16 {
        self.code.map_or(401, ErrorCode::http_status)
    }

    /// Renders the header value, e.g.
    /// `Bearer realm="api", error="invalid_token", error_description="token expired at 1700000000 (now 1700000100)"`.
    pub fn render(&self) -> String {
        let mut out = String::from(self.scheme);
        let mut first = true;
        let mut attribute = |out: &mut String, name: &str, value: &str| {
            out.push_str(if first { " " } else { ", " });
            first = false;
            out.push_str(name);
            out.push_str("=\"");
            out.push_str(value);
            out.push('"');
        };
        if let Some(realm) = &self.realm {
            attribute(&mut out, "realm", &sanitize_quoted(realm, 256));
        }
        if let Some(algs) = &self.algs {
            attribute(&mut out, "algs", &sanitize_scope(algs));
        }
        // RFC 6750 §3.1: a request without credentials gets no error attribute.
        let error = self.code.and_then(|code| match code.disposition() {
            Disposition::Bearer(error) => Some(error),
            Disposition::Unauthenticated | Disposition::NotARequestError => None,
        });
        if let Some(error) = error {
            let name = match self.code {
                Some(ErrorCode::DpopProofInvalid) if self.scheme == "DPoP" => "invalid_dpop_proof",
                Some(ErrorCode::DpopNonceRequired) if self.scheme == "DPoP" => "use_dpop_nonce",
                _ => error.as_str(),
            };
            attribute(&mut out, "error", name);
            if let Some(description) = &self.description {
                attribute(&mut out, "error_description", &sanitize_quoted(description, MAX_DESCRIPTION_BYTES));
            }
            if let Some(scope) = &self.scope {
                let scope = sanitize_scope(scope);
                if !scope.is_empty() {
                    attribute(&mut out, "scope", &scope);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

    #[test]
    fn scheme_case_and_spaces() {
        for value in [alloc::format!("Bearer {T}"), alloc::format!("bearer {T}"), alloc::format!("BEARER {T}"), alloc::format!("Bearer  {T}"), alloc::format!(" Bearer {T} ")] {
            assert_eq!(parse_authorization(&value, "Bearer"), Credential::Token(T), "{value}");
        }
    }

    #[test]
    fn trailing_and_separator_junk_malformed() {
        for value in [alloc::format!("Bearer {T} .jjjj"), alloc::format!("Bearer\t{T}"), alloc::format!("Bearer {T}, Bearer {T}"), alloc::format!("Bearer {T}\"")] {
            assert_eq!(parse_authorization(&value, "Bearer"), Credential::Malformed, "{value}");
        }
    }

    #[test]
    fn b64token_words_match_bytes() {
        // Every byte value in every position of an otherwise valid word, against the
        // byte-wise definition.
        for position in 0..8 {
            for byte in 0..=255u8 {
                let mut bytes = *b"aZ09-._~";
                bytes[position] = byte;
                assert_eq!(b64token_word(u64::from_le_bytes(bytes)), is_b64token_char(byte), "byte {byte} at {position}");
            }
        }
        assert!(b64token_word(u64::from_le_bytes(*b"+/AZaz09")));
        assert!(!b64token_word(u64::from_le_bytes(*b"+/AZ,z09")));
    }

    #[test]
    fn b64token_long_values() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl-_~+/";
        for end in 1..=token.len() {
            assert!(is_b64token(&token[..end]), "{end}");
            for (index, bad) in [(0, ' '), (end - 1, '"'), (end / 2, '\u{e9}'), (end / 2, '=')] {
                let mut text = String::from(&token[..end]);
                text.replace_range(index..=index, bad.encode_utf8(&mut [0; 4]));
                let expected = bad == '=' && index == end - 1 && end > 1;
                assert_eq!(is_b64token(&text), expected, "{text:?}");
            }
        }
    }

    #[test]
    fn b64token_characters() {
        for byte in 0u8..=127 {
            let text = alloc::format!("a{}", char::from(byte));
            let expected = byte.is_ascii_alphanumeric() || b"-._~+/=".contains(&byte);
            assert_eq!(is_b64token(&text), expected, "byte {byte}");
        }
        assert!(is_b64token("ab=="));
        assert!(!is_b64token("a=b"), "`=` only at the end");
        assert!(!is_b64token("=="), "padding alone");
        assert!(!is_b64token("a\u{e9}"), "non-ASCII");
    }

    #[test]
    fn absent_credentials() {
        for value in ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearerx abc", "DPoP abc"] {
            assert_eq!(parse_authorization(value, "Bearer"), Credential::Absent, "{value}");
        }
    }

    #[test]
    fn custom_prefix() {
        assert_eq!(parse_with_prefix("Token=abc", "Token="), Credential::Token("abc"));
        assert_eq!(parse_with_prefix("abc", ""), Credential::Token("abc"));
        assert_eq!(parse_with_prefix("Token=a b", "Token="), Credential::Malformed);
        assert_eq!(parse_with_prefix("Other abc", "Token="), Credential::Absent);
    }

    #[test]
    fn challenge_without_credentials_has_no_error() {
        let challenge = Challenge::bearer(Some("api"), Some(ErrorCode::TokenMissing));
        assert_eq!(challenge.render(), "Bearer realm=\"api\"");
        assert_eq!(challenge.status(), 401);
    }

    #[test]
    fn challenge_sanitises_description() {
        let mut challenge = Challenge::bearer(Some("a\"b"), Some(ErrorCode::IssuerInvalid));
        challenge.description = Some(String::from("issuer `x\"\\é` is not accepted"));
        assert_eq!(
            challenge.render(),
            "Bearer realm=\"a?b\", error=\"invalid_token\", error_description=\"issuer `x???` is not accepted\""
        );
    }

    #[test]
    fn insufficient_scope_challenge() {
        let mut challenge = Challenge::bearer(None, Some(ErrorCode::InsufficientScope));
        challenge.scope = Some(String::from("api:write  \"bad\""));
        assert_eq!(challenge.render(), "Bearer error=\"insufficient_scope\", scope=\"api:write bad\"");
        assert_eq!(challenge.status(), 403);
    }
}
