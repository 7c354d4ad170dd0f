//! Authorization requests and responses of the authorization code flow
//! ([RFC 6749 §4.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1)) with PKCE S256
//! ([RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)), resource indicators
//! ([RFC 8707](https://www.rfc-editor.org/rfc/rfc8707)) and issuer identification
//! ([RFC 9207](https://www.rfc-editor.org/rfc/rfc9207)).
//!
//! [`AuthorizationRequest::to_url`] always sends `response_type=code` and
//! `code_challenge_method=S256`. No other parameter can replace them, so `plain` cannot be
//! requested.
//!
//! [`parse_authorization_response`] checks that the response is well formed, then that `iss`
//! is the expected issuer, then that `state` is the expected value. Only then does it read
//! `error` or `code`, so a forged response never reaches the caller's error handling or
//! token request.
//!
//! Randomness is an argument: the adapters pass bytes from the platform CSPRNG.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use base64ct::{Base64UrlUnpadded, Encoding};
use subtle::ConstantTimeEq;

use crate::error::Quoted;

/// Random bytes in a `state` or `nonce` value: 256 bits, so a value cannot be guessed.
pub const RANDOM_VALUE_BYTES: usize = 32;

/// Length of an S256 `code_challenge`: 32 bytes of SHA-256 in unpadded base64url.
pub const CODE_CHALLENGE_LENGTH: usize = 43;

/// Parameters this module sets itself. Extra parameters may not repeat them
/// ([RFC 6749 §3.1](https://www.rfc-editor.org/rfc/rfc6749#section-3.1): a parameter must not
/// appear more than once), and `code_verifier` is refused because the verifier must only
/// ever reach the token endpoint.
pub const RESERVED_PARAMETERS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "code_verifier",
];

/// Encodes random bytes as a `state` or `nonce` value: 43 characters of unpadded base64url.
pub fn random_value(random: &[u8; RANDOM_VALUE_BYTES]) -> String {
    Base64UrlUnpadded::encode_string(random)
}

/// A parameter of an authorization request that cannot be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A parameter value is empty, has characters the RFC does not allow, or is not the
    /// required kind of URI.
    InvalidParameter {
        /// The parameter's name, e.g. `redirect_uri`.
        parameter: String,
        /// Description of the problem and of the allowed values.
        reason: &'static str,
    },
    /// An extra parameter repeats one this module sets, or `code_verifier`.
    ReservedParameter {
        /// The parameter's name.
        parameter: String,
    },
    /// An extra parameter, or one in the endpoint's query, appears twice.
    DuplicateParameter {
        /// The parameter's name.
        parameter: String,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidParameter { parameter, reason } => {
                write!(f, "authorization request parameter {} is invalid: {reason}", Quoted(parameter))
            }
            Self::ReservedParameter { parameter } => write!(
                f,
                "authorization request parameter {} is set by the library and cannot be passed as an extra parameter",
                Quoted(parameter)
            ),
            Self::DuplicateParameter { parameter } => write!(
                f,
                "authorization request parameter {} appears more than once",
                Quoted(parameter)
            ),
        }
    }
}

/// An authorization request with PKCE S256.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The authorization endpoint: `https://`, or `http://` on a loopback host
    /// (`localhost`, `127.0.0.1`, `[::1]`) for development. It may have a query, which is
    /// kept, and must not have a fragment.
    pub authorization_endpoint: String,
    /// `client_id`: one or more characters `%x20-7E`.
    pub client_id: String,
    /// `redirect_uri`: an absolute URI without a fragment.
    pub redirect_uri: String,
    /// Scope tokens (`%x21 / %x23-5B / %x5D-7E`, no spaces), joined with spaces; no
    /// `scope` parameter is sent when the list is empty.
    pub scopes: Vec<String>,
    /// `state`: one or more characters `%x20-7E`; see [`random_value`].
    pub state: String,
    /// The S256 `code_challenge`: exactly 43 characters of canonical unpadded base64url.
    pub code_challenge: String,
    /// `resource` indicators: absolute URIs without a fragment, one parameter each.
    pub resources: Vec<String>,
    /// Further parameters, sent after the others in this order. Names must not repeat each
    /// other, a [`RESERVED_PARAMETERS`] entry, or a name in the endpoint's query.
    pub extra_params: Vec<(String, String)>,
}

impl AuthorizationRequest {
    /// Checks every parameter and writes the request URL.
    ///
    /// Parameters are sent in this order: `response_type=code`, `client_id`,
    /// `redirect_uri`, `scope`, `state`, `code_challenge`, `code_challenge_method=S256`,
    /// each `resource`, then the extra parameters. Names and values are percent-encoded
    /// except for the unreserved characters `A-Z a-z 0-9 - . _ ~`.
    ///
    /// Does NOT check that the challenge belongs to a verifier the caller kept; only its
    /// form.
    ///
    /// # Errors
    ///
    /// [`RequestError`] naming the first parameter that cannot be sent.
    pub fn to_url(&self) -> Result<String, RequestError> {
        let endpoint = self.authorization_endpoint.as_str();
        check_endpoint(endpoint)?;
        check_text("client_id", &self.client_id, is_visible_or_space)?;
        check_absolute_uri("redirect_uri", &self.redirect_uri)?;
        for scope in &self.scopes {
            check_text("scope", scope, is_scope_char)?;
        }
        check_text("state", &self.state, is_visible_or_space)?;
        check_code_challenge(&self.code_challenge)?;
        for resource in &self.resources {
            check_absolute_uri("resource", resource)?;
        }
        let endpoint_names = query_names(endpoint);
        let mut extra_names: Vec<&str> = Vec::new();
        for (name, _) in &self.extra_params {
            if name.is_empty() {
                return Err(invalid(name, "a parameter name must not be empty"));
            }
            if RESERVED_PARAMETERS.contains(&name.as_str()) {
                return Err(RequestError::ReservedParameter { parameter: name.clone() });
            }
            if extra_names.contains(&name.as_str()) || endpoint_names.iter().any(|existing| existing == name) {
                return Err(RequestError::DuplicateParameter { parameter: name.clone() });
            }
            extra_names.push(name);
        }
        if let Some(reserved) = endpoint_names.iter().find(|name| RESERVED_PARAMETERS.contains(&name.as_str())) {
            return Err(RequestError::ReservedParameter { parameter: reserved.clone() });
        }

        let mut url = String::from(endpoint);
        let mut separator = match endpoint.split_once('?') {
            None => '?',
            Some((_, "")) => '\0',
            Some((_, query)) if query.ends_with('&') => '\0',
            Some(_) => '&',
        };
        let mut push = |name: &str, value: &str| {
            if separator != '\0' {
                url.push(separator);
            }
            separator = '&';
            percent_encode_into(&mut url, name);
            url.push('=');
            percent_encode_into(&mut url, value);
        };
        push("response_type", "code");
        push("client_id", &self.client_id);
        push("redirect_uri", &self.redirect_uri);
        if !self.scopes.is_empty() {
            push("scope", &self.scopes.join(" "));
        }
        push("state", &self.state);
        push("code_challenge", &self.code_challenge);
        push("code_challenge_method", crate::pkce::CHALLENGE_METHOD);
        for resource in &self.resources {
            push("resource", resource);
        }
        for (name, value) in &self.extra_params {
            push(name, value);
        }
        Ok(url)
    }
}

fn invalid(parameter: &str, reason: &'static str) -> RequestError {
    RequestError::InvalidParameter { parameter: parameter.to_string(), reason }
}

/// `VSCHAR` of RFC 6749 Appendix A: `%x20-7E`.
fn is_visible_or_space(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

/// `NQCHAR` of RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`.
fn is_scope_char(byte: u8) -> bool {
    (0x21..=0x7e).contains(&byte) && byte != b'"' && byte != b'\\'
}

fn check_text(parameter: &'static str, value: &str, allowed: fn(u8) -> bool) -> Result<(), RequestError> {
    if value.is_empty() {
        return Err(invalid(parameter, "it must not be empty"));
    }
    if !value.bytes().all(allowed) {
        return Err(invalid(parameter, "it contains a character RFC 6749 does not allow here"));
    }
    Ok(())
}

/// Splits `scheme ":" rest` when the scheme is `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
/// ([RFC 3986 §3.1](https://www.rfc-editor.org/rfc/rfc3986#section-3.1)).
fn split_scheme(uri: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    let valid = first.is_ascii_alphabetic()
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'));
    valid.then_some((scheme, rest))
}

fn check_absolute_uri(parameter: &'static str, uri: &str) -> Result<(), RequestError> {
    // Visible ASCII only: an IRI must be converted to a URI (percent-encoded) first.
    if uri.is_empty() || !uri.bytes().all(|byte| (0x21..=0x7e).contains(&byte)) {
        return Err(invalid(parameter, "it must be a non-empty URI of visible ASCII characters"));
    }
    match split_scheme(uri) {
        Some((_, rest)) if !rest.is_empty() => {}
        _ => return Err(invalid(parameter, "it must be an absolute URI with a scheme")),
    }
    if uri.contains('#') {
        return Err(invalid(parameter, "it must not contain a fragment"));
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> Result<(), RequestError> {
    const PARAMETER: &str = "authorization_endpoint";
    check_absolute_uri(PARAMETER, endpoint)?;
    let Some((scheme, rest)) = split_scheme(endpoint) else {
        return Err(invalid(PARAMETER, "it must be an absolute URI with a scheme"));
    };
    let Some(hierarchy) = rest.strip_prefix("//") else {
        return Err(invalid(PARAMETER, "it must be an https:// URL"));
    };
    let authority = hierarchy.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid(PARAMETER, "it must name a host and carry no user information"));
    }
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(());
    }
    // RFC 6749 §3.1 requires TLS; plain http is allowed only on this machine, for
    // development servers.
    if scheme.eq_ignore_ascii_case("http") && is_loopback_authority(authority) {
        return Ok(());
    }
    Err(invalid(PARAMETER, "it must be an https:// URL (http:// only on localhost, 127.0.0.1 or [::1])"))
}

fn is_loopback_authority(authority: &str) -> bool {
    let host = if authority.starts_with('[') {
        authority.split_once(']').map_or(authority, |(host, _)| host).trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1"
}

fn check_code_challenge(challenge: &str) -> Result<(), RequestError> {
    // Decoding to exactly 32 bytes rejects padded, standard-alphabet and hex forms as well
    // as a wrong length.
    let mut digest = [0u8; 32];
    match Base64UrlUnpadded::decode(challenge, &mut digest) {
        Ok(decoded) if decoded.len() == 32 && challenge.len() == CODE_CHALLENGE_LENGTH => Ok(()),
        _ => Err(invalid(
            "code_challenge",
            "it must be the S256 challenge: 43 characters of unpadded base64url of a SHA-256 digest",
        )),
    }
}

/// Names in the query of `url`, decoded; undecodable names are kept as written.
fn query_names(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else { return Vec::new() };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            form_decode(name).unwrap_or_else(|| name.to_string())
        })
        .collect()
}

/// Appends `text` percent-encoded, keeping only the unreserved characters of
/// [RFC 3986 §2.3](https://www.rfc-editor.org/rfc/rfc3986#section-2.3).
fn percent_encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // `fmt::Write` for `String` never returns an error.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value: `+` is a space and
/// `%XX` a byte. Returns `None` for a broken `%` escape or bytes that are not UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let high = hex_value(input.next()?)?;
                let low = hex_value(input.next()?)?;
                bytes.push(high << 4 | low);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Stable machine-readable code of a rejected authorization response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseErrorCode {
    /// The response cannot be read: a broken escape, a repeated parameter, or no `code`.
    ResponseMalformed,
    /// `state` is missing or not the value sent in the request.
    StateMismatch,
    /// `iss` is missing or not the expected issuer.
    IssuerMismatch,
    /// The authorization server returned an error response.
    ErrorResponse,
}

impl ResponseErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [ResponseErrorCode] =
        &[Self::ResponseMalformed, Self::StateMismatch, Self::IssuerMismatch, Self::ErrorResponse];

    /// Returns the stable string form, e.g. `state_mismatch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ResponseMalformed => "response_malformed",
            Self::StateMismatch => "state_mismatch",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::ErrorResponse => "error_response",
        }
    }
}

impl fmt::Display for ResponseErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected authorization response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The response cannot be read.
    Malformed {
        /// Description of the problem.
        reason: String,
    },
    /// `state` is missing or differs from the value sent. The expected value is not kept,
    /// so messages never show it.
    StateMismatch {
        /// Whether the response had a `state` at all.
        present: bool,
    },
    /// `iss` is missing or differs from the expected issuer
    /// ([RFC 9207 §2.4](https://www.rfc-editor.org/rfc/rfc9207#section-2.4)).
    IssuerMismatch {
        /// The expected issuer.
        expected: String,
        /// The response's `iss`, if it had one.
        actual: Option<String>,
    },
    /// The authorization server returned an error
    /// ([RFC 6749 §4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1)), after
    /// its `iss` and `state` passed.
    ErrorResponse {
        /// `error`, e.g. `access_denied`.
        error: String,
        /// `error_description`, if sent.
        error_description: Option<String>,
        /// `error_uri`, if sent.
        error_uri: Option<String>,
    },
}

impl ResponseError {
    /// Returns the stable code.
    pub const fn code(&self) -> ResponseErrorCode {
        match self {
            Self::Malformed { .. } => ResponseErrorCode::ResponseMalformed,
            Self::StateMismatch { .. } => ResponseErrorCode::StateMismatch,
            Self::IssuerMismatch { .. } => ResponseErrorCode::IssuerMismatch,
            Self::ErrorResponse { .. } => ResponseErrorCode::ErrorResponse,
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { reason } => write!(f, "authorization response is malformed: {reason}"),
            Self::StateMismatch { present: true } => {
                f.write_str("authorization response state does not match the request")
            }
            Self::StateMismatch { present: false } => f.write_str("authorization response has no state"),
            Self::IssuerMismatch { expected, actual: Some(actual) } => write!(
                f,
                "authorization response issuer {} is not the expected {}",
                Quoted(actual),
                Quoted(expected)
            ),
            Self::IssuerMismatch { expected, actual: None } => write!(
                f,
                "authorization response has no iss parameter, expected {}",
                Quoted(expected)
            ),
            Self::ErrorResponse { error, error_description, .. } => {
                write!(f, "authorization server returned error {}", Quoted(error))?;
                if let Some(description) = error_description {
                    write!(f, ": {}", Quoted(description))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RequestError {}

#[cfg(feature = "std")]
impl std::error::Error for ResponseError {}

/// Expected values of an authorization response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseExpectations<'a> {
    /// The `state` sent in the request.
    pub state: &'a str,
    /// The issuer identifier of the authorization server. When set, `iss` is required and
    /// must equal it; set it for every server that sends `iss` (its metadata has
    /// `authorization_response_iss_parameter_supported: true`). When unset, `iss` is ignored.
    pub issuer: Option<&'a str>,
}

/// A successful authorization response.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The authorization code, to redeem at the token endpoint with the code verifier.
    pub code: String,
    /// The response's `iss`, if it had one.
    pub issuer: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("code", &"<secret>")
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Parameters of a response that are read, and so must not be repeated.
const RESPONSE_PARAMETERS: [&str; 6] = ["code", "state", "iss", "error", "error_description", "error_uri"];

/// Reads the authorization response in the query of a redirect URL.
///
/// `url` is the whole redirect URL, or only its query starting with `?`. A fragment is
/// ignored. The checks run in this order:
///
/// 1. the query decodes (`+` and `%XX` escapes, UTF-8), and none of `code`, `state`, `iss`,
///    `error`, `error_description`, `error_uri` appears twice;
/// 2. `iss` against [`ResponseExpectations::issuer`];
/// 3. `state` against the expected value, in constant time;
/// 4. `error`, then a non-empty `code`.
///
/// Does NOT read responses in the fragment (`response_mode=fragment`) or as a JWT (JARM).
///
/// # Errors
///
/// The first failing check as a [`ResponseError`].
///
/// # Security
///
/// An empty expected `state` is rejected as a mismatch: without a state the client cannot
/// tell its own responses from forged ones.
pub fn parse_authorization_response(url: &str, expected: ResponseExpectations<'_>) -> Result<AuthorizationResponse, ResponseError> {
    let without_fragment = url.split_once('#').map_or(url, |(before, _)| before);
    let query = without_fragment.split_once('?').map_or("", |(_, query)| query);

    let mut values: [Option<String>; RESPONSE_PARAMETERS.len()] = Default::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_decode(raw_name).ok_or_else(|| malformed("a parameter name has a broken %-escape or is not UTF-8"))?;
        let Some(index) = RESPONSE_PARAMETERS.iter().position(|known| *known == name) else { continue };
        let value = form_decode(raw_value)
            .ok_or_else(|| malformed(alloc::format!("parameter `{name}` has a broken %-escape or is not UTF-8")))?;
        let Some(slot) = values.get_mut(index) else { continue };
        if slot.is_some() {
            return Err(malformed(alloc::format!("parameter `{name}` appears more than once")));
        }
        *slot = Some(value);
    }
    let [code, state, iss, error, error_description, error_uri] = values;

    if let Some(expected_issuer) = expected.issuer {
        if iss.as_deref() != Some(expected_issuer) {
            return Err(ResponseError::IssuerMismatch { expected: expected_issuer.to_string(), actual: iss });
        }
    }
    let state_matches = match &state {
        Some(actual) if !expected.state.is_empty() => {
            bool::from(actual.as_bytes().ct_eq(expected.state.as_bytes()))
        }
        _ => false,
    };
    if !state_matches {
        return Err(ResponseError::StateMismatch { present: state.is_some() });
    }
    if let Some(error) = error {
        return Err(ResponseError::ErrorResponse { error, error_description, error_uri });
    }
    match code {
        Some(code) if !code.is_empty() => Ok(AuthorizationResponse { code, issuer: iss }),
        Some(_) => Err(malformed("parameter `code` is empty")),
        None => Err(malformed("it has neither `code` nor `error`")),
    }
}

fn malformed(reason: impl Into<String>) -> ResponseError {
    ResponseError::Malformed { reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            authorization_endpoint: "https://idp.example.com/authorize".to_string(),
            client_id: "demo app".to_string(),
            redirect_uri: "https://app.example.com/callback?x=1".to_string(),
            scopes: vec!["openid".to_string(), "api:read".to_string()],
            state: "af0ifjsldkj".to_string(),
            code_challenge: CHALLENGE.to_string(),
            resources: vec!["https://api.example.com".to_string()],
            extra_params: vec![("prompt".to_string(), "login".to_string())],
        }
    }

    #[test]
    fn request_url_parameters_in_order() {
        assert_eq!(
            request().to_url().unwrap(),
            "https://idp.example.com/authorize?response_type=code&client_id=demo%20app\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback%3Fx%3D1&scope=openid%20api%3Aread\
             &state=af0ifjsldkj&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256&resource=https%3A%2F%2Fapi.example.com&prompt=login"
        );
    }

    #[test]
    fn request_keeps_endpoint_query() {
        let mut with_query = request();
        with_query.authorization_endpoint = "https://idp.example.com/authorize?tenant=a".to_string();
        assert!(with_query.to_url().unwrap().starts_with("https://idp.example.com/authorize?tenant=a&response_type=code&"));
        with_query.authorization_endpoint = "https://idp.example.com/authorize?".to_string();
        assert!(with_query.to_url().unwrap().starts_with("https://idp.example.com/authorize?response_type=code&"));
    }

    #[test]
    fn request_reserved_parameters_rejected() {
        for name in RESERVED_PARAMETERS {
            let mut overriding = request();
            overriding.extra_params = vec![(name.to_string(), "plain".to_string())];
            assert_eq!(overriding.to_url(), Err(RequestError::ReservedParameter { parameter: name.to_string() }), "{name}");
        }
        let mut in_endpoint = request();
        in_endpoint.authorization_endpoint = "https://idp.example.com/authorize?code_challenge_method=plain".to_string();
        assert!(matches!(in_endpoint.to_url(), Err(RequestError::ReservedParameter { .. })));
    }

    #[test]
    fn request_duplicate_extra_rejected() {
        let mut twice = request();
        twice.extra_params = vec![("prompt".to_string(), "a".to_string()), ("prompt".to_string(), "b".to_string())];
        assert_eq!(twice.to_url(), Err(RequestError::DuplicateParameter { parameter: "prompt".to_string() }));
        let mut clash = request();
        clash.authorization_endpoint = "https://idp.example.com/authorize?prompt=none".to_string();
        assert_eq!(clash.to_url(), Err(RequestError::DuplicateParameter { parameter: "prompt".to_string() }));
    }

    #[test]
    fn request_challenge_forms_rfc7636() {
        for challenge in [
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM=",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3",
            "MTNkMzFlOTYxYTFhZDhlYzJmMTZiMTBjNGM5ODJlMDg3NmE4NzhhZDZkZjE0NDU2NmVlMTg5NGFjYjcwZjljMw",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
            "",
        ] {
            let mut wrong = request();
            wrong.code_challenge = challenge.to_string();
            assert!(
                matches!(wrong.to_url(), Err(RequestError::InvalidParameter { ref parameter, .. }) if parameter == "code_challenge"),
                "{challenge}"
            );
        }
    }

    #[test]
    fn request_endpoint_rules() {
        for endpoint in [
            "http://idp.example.com/authorize",
            "https://idp.example.com/authorize#top",
            "https://user@idp.example.com/authorize",
            "https:///authorize",
            "idp.example.com/authorize",
            "https://idp.example.com/a b",
            "ftp://idp.example.com/",
            "http://localhost.example.com/authorize",
        ] {
            let mut wrong = request();
            wrong.authorization_endpoint = endpoint.to_string();
            assert!(matches!(wrong.to_url(), Err(RequestError::InvalidParameter { .. })), "{endpoint}");
        }
        for endpoint in ["http://localhost:3000/authorize", "http://127.0.0.1:8080/auth", "http://[::1]:80/", "HTTPS://IDP.example.com"] {
            let mut local = request();
            local.authorization_endpoint = endpoint.to_string();
            assert!(local.to_url().is_ok(), "{endpoint}");
        }
    }

    #[test]
    fn request_value_rules() {
        type Change = fn(&mut AuthorizationRequest);
        let cases: [(Change, &str); 7] = [
            (|r| r.client_id.clear(), "client_id"),
            (|r| r.client_id = "caf\u{e9}".to_string(), "client_id"),
            (|r| r.redirect_uri = "/callback".to_string(), "redirect_uri"),
            (|r| r.redirect_uri = "https://app.example.com/cb#x".to_string(), "redirect_uri"),
            (|r| r.scopes = vec!["a b".to_string()], "scope"),
            (|r| r.state.clear(), "state"),
            (|r| r.resources = vec!["api".to_string()], "resource"),
        ];
        for (change, parameter) in cases {
            let mut wrong = request();
            change(&mut wrong);
            assert!(
                matches!(wrong.to_url(), Err(RequestError::InvalidParameter { parameter: ref actual, .. }) if actual == parameter),
                "{parameter}"
            );
        }
    }

    #[test]
    fn request_native_redirect_and_no_scope() {
        let mut native = request();
        native.redirect_uri = "com.example.app:/oauth2redirect".to_string();
        native.scopes.clear();
        let url = native.to_url().unwrap();
        assert!(url.contains("&redirect_uri=com.example.app%3A%2Foauth2redirect&state="));
        assert!(!url.contains("scope="));
    }

    fn expect<'a>(state: &'a str, issuer: Option<&'static str>) -> ResponseExpectations<'a> {
        ResponseExpectations { state, issuer }
    }

    #[test]
    fn response_code_returned() {
        let response = parse_authorization_response(
            "https://app.example.com/cb?code=Spl%2BxA+b&state=xyz&iss=https%3A%2F%2Fidp.example.com#frag",
            expect("xyz", Some("https://idp.example.com")),
        )
        .unwrap();
        assert_eq!(response.code, "Spl+xA b");
        assert_eq!(response.issuer.as_deref(), Some("https://idp.example.com"));
        let query_only = parse_authorization_response("?state=xyz&code=abc", expect("xyz", None)).unwrap();
        assert_eq!(query_only.code, "abc");
    }

    #[test]
    fn response_state_checked() {
        let wrong = parse_authorization_response("https://a/cb?code=c&state=other", expect("xyz", None));
        assert_eq!(wrong, Err(ResponseError::StateMismatch { present: true }));
        let missing = parse_authorization_response("https://a/cb?code=c", expect("xyz", None));
        assert_eq!(missing, Err(ResponseError::StateMismatch { present: false }));
        let empty_expected = parse_authorization_response("https://a/cb?code=c&state=", expect("", None));
        assert_eq!(empty_expected, Err(ResponseError::StateMismatch { present: true }));
    }

    #[test]
    fn response_issuer_rfc9207() {
        let wrong = parse_authorization_response("https://a/cb?code=c&state=s&iss=https%3A%2F%2Fevil", expect("s", Some("https://idp")));
        assert_eq!(
            wrong,
            Err(ResponseError::IssuerMismatch { expected: "https://idp".to_string(), actual: Some("https://evil".to_string()) })
        );
        let missing = parse_authorization_response("https://a/cb?code=c&state=s", expect("s", Some("https://idp")));
        assert_eq!(missing, Err(ResponseError::IssuerMismatch { expected: "https://idp".to_string(), actual: None }));
        let trailing_slash = parse_authorization_response("https://a/cb?code=c&state=s&iss=https%3A%2F%2Fidp%2F", expect("s", Some("https://idp")));
        assert!(matches!(trailing_slash, Err(ResponseError::IssuerMismatch { .. })));
        let ignored = parse_authorization_response("https://a/cb?code=c&state=s&iss=https%3A%2F%2Fother", expect("s", None));
        assert!(ignored.is_ok());
    }

    #[test]
    fn response_error_after_checks() {
        let error = parse_authorization_response(
            "https://a/cb?error=access_denied&error_description=User+said+no&state=s&iss=https%3A%2F%2Fidp",
            expect("s", Some("https://idp")),
        );
        assert_eq!(
            error,
            Err(ResponseError::ErrorResponse {
                error: "access_denied".to_string(),
                error_description: Some("User said no".to_string()),
                error_uri: None,
            })
        );
        // A forged error without the right state is a state mismatch, not an error response.
        let forged = parse_authorization_response("https://a/cb?error=access_denied&state=forged", expect("s", None));
        assert_eq!(forged, Err(ResponseError::StateMismatch { present: true }));
    }

    #[test]
    fn response_malformed_cases() {
        let cases = [
            ("https://a/cb?code=a&code=b&state=s", ResponseErrorCode::ResponseMalformed),
            ("https://a/cb?code=a&state=s&state=s", ResponseErrorCode::ResponseMalformed),
            ("https://a/cb?code=%ZZ&state=s", ResponseErrorCode::ResponseMalformed),
            ("https://a/cb?code=%C3&state=s", ResponseErrorCode::ResponseMalformed),
            ("https://a/cb?code=&state=s", ResponseErrorCode::ResponseMalformed),
            ("https://a/cb?state=s", ResponseErrorCode::ResponseMalformed),
            // A response in the fragment is not read, so its state is missing.
            ("https://a/cb#code=a&state=s", ResponseErrorCode::StateMismatch),
        ];
        for (url, expected) in cases {
            let result = parse_authorization_response(url, expect("s", None));
            assert_eq!(result.map_err(|error| error.code()).err(), Some(expected), "{url}");
        }
    }

    #[test]
    fn random_value_length() {
        assert_eq!(random_value(&[0xff; RANDOM_VALUE_BYTES]).len(), 43);
        assert_eq!(random_value(&[0; RANDOM_VALUE_BYTES]), "A".repeat(43));
    }
}
