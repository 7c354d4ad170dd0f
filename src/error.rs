//! Errors of every phase, their stable codes and their RFC 6750 mapping.
//!
//! Each phase has its own `#[non_exhaustive]` enum: [`ParseError`] (token syntax),
//! [`KeySetError`] (JWKS documents), [`VerifyError`] (everything after parsing) and
//! [`ConfigError`] (policy documents). Every variant maps to one [`ErrorCode`], a stable
//! `snake_case` string shared by the Rust API, the JS `TokenError.code` and the Envoy
//! filter's logs and metrics. [`ErrorCode::bearer_error`] maps each code to the
//! [RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1) error in one
//! exhaustive match.
//!
//! Messages are short lowercase sentences. They may quote a claim, a `kid` or an algorithm
//! name (shortened by [`Quoted`]), and never the token itself.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Stable machine-readable code of a failure.
///
/// The string form ([`ErrorCode::as_str`]) never changes once released; new codes may be
/// added, so match with a wildcard arm outside this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No bearer token in the request.
    TokenMissing,
    /// The `Authorization` header is not a well-formed single bearer credential.
    AuthorizationMalformed,
    /// The request carries the token in more than one place.
    TokenMultiple,
    /// The token is longer than the configured maximum.
    TokenTooLarge,
    /// The token is not three dot-separated segments.
    TokenMalformed,
    /// A segment is not canonical unpadded base64url.
    InvalidBase64,
    /// The JOSE header is not a valid JSON object of the expected shape.
    HeaderMalformed,
    /// The claims are not a valid JSON object, or a registered claim has the wrong type.
    ClaimsMalformed,
    /// The header lists critical extensions that are not implemented.
    UnsupportedCritical,
    /// The header's `alg` is not in the policy's allowlist.
    AlgorithmNotAllowed,
    /// No key in the key set matches the token's `kid`.
    KeyNotFound,
    /// Keys match the `kid`, but none may verify this algorithm.
    KeyUnusable,
    /// The signature has the wrong length for the algorithm.
    SignatureLengthInvalid,
    /// The signature does not verify.
    SignatureInvalid,
    /// The header's `typ`, or the policy's token-type claim, is not the expected one.
    TokenTypeInvalid,
    /// `exp` has passed.
    TokenExpired,
    /// `nbf` or `iat` lies in the future.
    TokenNotYetValid,
    /// `iat` is older than the policy's maximum token age.
    TokenTooOld,
    /// The token's lifetime exceeds the policy's maximum.
    LifetimeTooLong,
    /// A claim required by the policy is absent.
    ClaimMissing,
    /// `iss` is not an accepted issuer.
    IssuerInvalid,
    /// `aud` contains none of the accepted audiences.
    AudienceInvalid,
    /// `sub` does not match the policy's subject matchers.
    SubjectInvalid,
    /// `client_id` (or `azp`) is not an accepted client.
    ClientNotAllowed,
    /// A claim has a value other than the one the policy requires.
    ClaimValueInvalid,
    /// A scope required by the policy is missing.
    InsufficientScope,
    /// A role required by the policy is missing.
    InsufficientRole,
    /// No key set is available for the provider (never fetched, or expired after failures).
    JwksUnavailable,
    /// A JWKS document could not be used.
    JwksInvalid,
    /// A DPoP proof is missing or invalid (RFC 9449).
    DpopProofInvalid,
    /// The server requires a DPoP nonce (RFC 9449 §8).
    DpopNonceRequired,
    /// The introspection endpoint answered `active: false` (RFC 7662 §2.2).
    TokenInactive,
    /// The token's `jti` is on the provider's revocation list.
    TokenRevoked,
    /// No introspection answer is available: the endpoint failed or timed out.
    IntrospectionUnavailable,
    /// No revocation list is available for the provider (never fetched, or expired after failures).
    RevocationListUnavailable,
    /// A policy or filter configuration is invalid.
    ConfigInvalid,
    /// A PKCE verifier or challenge is malformed (RFC 7636 §4.1).
    PkceInvalid,
}

/// Error values of [RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BearerError {
    /// `invalid_request`, HTTP 400.
    InvalidRequest,
    /// `invalid_token`, HTTP 401.
    InvalidToken,
    /// `insufficient_scope`, HTTP 403.
    InsufficientScope,
}

impl BearerError {
    /// Returns the `error` attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// Returns the HTTP status RFC 6750 assigns to this error.
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
        }
    }
}

/// How a failure is answered over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// 401 with a `WWW-Authenticate` challenge that has no `error` attribute
    /// ([RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1): the request
    /// carried no authentication information).
    Unauthenticated,
    /// The RFC 6750 error and its status.
    Bearer(BearerError),
    /// Not an answer to a request: a configuration or tooling error.
    NotARequestError,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::TokenMissing,
        Self::AuthorizationMalformed,
        Self::TokenMultiple,
        Self::TokenTooLarge,
        Self::TokenMalformed,
        Self::InvalidBase64,
        Self::HeaderMalformed,
        Self::ClaimsMalformed,
        Self::UnsupportedCritical,
        Self::AlgorithmNotAllowed,
        Self::KeyNotFound,
        Self::KeyUnusable,
        Self::SignatureLengthInvalid,
        Self::SignatureInvalid,
        Self::TokenTypeInvalid,
        Self::TokenExpired,
        Self::TokenNotYetValid,
        Self::TokenTooOld,
        Self::LifetimeTooLong,
        Self::ClaimMissing,
        Self::IssuerInvalid,
        Self::AudienceInvalid,
        Self::SubjectInvalid,
        Self::ClientNotAllowed,
        Self::ClaimValueInvalid,
        Self::InsufficientScope,
        Self::InsufficientRole,
        Self::JwksUnavailable,
        Self::JwksInvalid,
        Self::DpopProofInvalid,
        Self::DpopNonceRequired,
        Self::TokenInactive,
        Self::TokenRevoked,
        Self::IntrospectionUnavailable,
        Self::RevocationListUnavailable,
        Self::ConfigInvalid,
        Self::PkceInvalid,
    ];

    /// Returns the stable string form, e.g. `token_expired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::AuthorizationMalformed => "authorization_malformed",
            Self::TokenMultiple => "token_multiple",
            Self::TokenTooLarge => "token_too_large",
            Self::TokenMalformed => "token_malformed",
            Self::InvalidBase64 => "invalid_base64",
            Self::HeaderMalformed => "header_malformed",
            Self::ClaimsMalformed => "claims_malformed",
            Self::UnsupportedCritical => "unsupported_critical",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::KeyNotFound => "key_not_found",
            Self::KeyUnusable => "key_unusable",
            Self::SignatureLengthInvalid => "signature_length_invalid",
            Self::SignatureInvalid => "signature_invalid",
            Self::TokenTypeInvalid => "token_type_invalid",
            Self::TokenExpired => "token_expired",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::TokenTooOld => "token_too_old",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::ClaimMissing => "claim_missing",
            Self::IssuerInvalid => "issuer_invalid",
            Self::AudienceInvalid => "audience_invalid",
            Self::SubjectInvalid => "subject_invalid",
            Self::ClientNotAllowed => "client_not_allowed",
            Self::ClaimValueInvalid => "claim_value_invalid",
            Self::InsufficientScope => "insufficient_scope",
            Self::InsufficientRole => "insufficient_role",
            Self::JwksUnavailable => "jwks_unavailable",
            Self::JwksInvalid => "jwks_invalid",
            Self::DpopProofInvalid => "dpop_proof_invalid",
            Self::DpopNonceRequired => "dpop_nonce_required",
            Self::TokenInactive => "token_inactive",
            Self::TokenRevoked => "token_revoked",
            Self::IntrospectionUnavailable => "introspection_unavailable",
            Self::RevocationListUnavailable => "revocation_list_unavailable",
            Self::ConfigInvalid => "config_invalid",
            Self::PkceInvalid => "pkce_invalid",
        }
    }

    /// Parses the string form back into a code.
    pub fn from_str_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|candidate| candidate.as_str() == code)
    }

    /// Maps the code to its HTTP answer.
    ///
    /// This is the one mapping from codes to RFC 6750; it has no catch-all arm, so a new
    /// code does not compile until it is placed here.
    pub const fn disposition(self) -> Disposition {
        use BearerError::{InsufficientScope, InvalidRequest, InvalidToken};
        match self {
            Self::TokenMissing => Disposition::Unauthenticated,
            Self::AuthorizationMalformed | Self::TokenMultiple => {
                Disposition::Bearer(InvalidRequest)
            }
            Self::TokenTooLarge
            | Self::TokenMalformed
            | Self::InvalidBase64
            | Self::HeaderMalformed
            | Self::ClaimsMalformed
            | Self::UnsupportedCritical
            | Self::AlgorithmNotAllowed
            | Self::KeyNotFound
            | Self::KeyUnusable
            | Self::SignatureLengthInvalid
            | Self::SignatureInvalid
            | Self::TokenTypeInvalid
            | Self::TokenExpired
            | Self::TokenNotYetValid
            | Self::TokenTooOld
            | Self::LifetimeTooLong
            | Self::ClaimMissing
            | Self::IssuerInvalid
            | Self::AudienceInvalid
            | Self::SubjectInvalid
            | Self::ClientNotAllowed
            | Self::ClaimValueInvalid
            | Self::JwksUnavailable
            | Self::JwksInvalid
            | Self::DpopProofInvalid
            | Self::DpopNonceRequired
            | Self::TokenInactive
            | Self::TokenRevoked
            | Self::IntrospectionUnavailable
            | Self::RevocationListUnavailable => Disposition::Bearer(InvalidToken),
            Self::InsufficientScope | Self::InsufficientRole => {
                Disposition::Bearer(InsufficientScope)
            }
            Self::ConfigInvalid | Self::PkceInvalid => Disposition::NotARequestError,
        }
    }

    /// Returns the RFC 6750 error, or `None` when the challenge carries no `error`
    /// attribute or the code does not answer a request.
    pub const fn bearer_error(self) -> Option<BearerError> {
        match self.disposition() {
            Disposition::Bearer(error) => Some(error),
            Disposition::Unauthenticated | Disposition::NotARequestError => None,
        }
    }

    /// Returns the HTTP status for a request that failed with this code.
    pub const fn http_status(self) -> u16 {
        match self.disposition() {
            Disposition::Bearer(error) => error.status(),
            Disposition::Unauthenticated => 401,
            Disposition::NotARequestError => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value from untrusted input, printed in quotes and shortened to
/// [`Quoted::MAX_CHARS`] characters, with control characters escaped.
pub struct Quoted<'a>(pub &'a str);

impl Quoted<'_> {
    /// Longest part of a value that messages show.
    pub const MAX_CHARS: usize = 64;
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        for (index, character) in self.0.chars().enumerate() {
            if index == Self::MAX_CHARS {
                f.write_str("…")?;
                break;
            }
            if character.is_control() || character == '`' {
                write!(f, "\\u{{{:x}}}", u32::from(character))?;
            } else {
                write!(f, "{character}")?;
            }
        }
        f.write_str("`")
    }
}

/// Which segment of a compact JWS failed to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// The first segment, the JOSE header.
    Header,
    /// The second segment, the claims.
    Payload,
    /// The third segment, the signature.
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// Failure to parse a compact JWS ([RFC 7515 §7.1](https://www.rfc-editor.org/rfc/rfc7515#section-7.1)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The token is longer than the limit; nothing was decoded.
    TooLarge {
        /// Length of the token in bytes.
        actual: usize,
        /// Configured maximum in bytes.
        max: usize,
    },
    /// The token is empty or not exactly three segments.
    Malformed {
        /// Number of dot-separated segments found (capped at 4).
        segments: usize,
    },
    /// A segment is not canonical unpadded base64url
    /// ([RFC 7515 §2](https://www.rfc-editor.org/rfc/rfc7515#section-2)).
    Base64 {
        /// The segment that failed.
        segment: Segment,
    },
    /// The header is not a JSON object of the expected shape.
    Header {
        /// What is wrong.
        reason: String,
    },
    /// The claims are not a JSON object, or a registered claim has the wrong type.
    Claims {
        /// What is wrong.
        reason: String,
    },
    /// The header has a `crit` member; no extension is implemented
    /// ([RFC 7515 §4.1.11](https://www.rfc-editor.org/rfc/rfc7515#section-4.1.11)).
    UnsupportedCritical {
        /// The names listed in `crit`, or a description of a malformed `crit`.
        names: Vec<String>,
    },
}

impl ParseError {
    /// Returns the stable code.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TokenTooLarge,
            Self::Malformed { .. } => ErrorCode::TokenMalformed,
            Self::Base64 { .. } => ErrorCode::InvalidBase64,
            Self::Header { .. } => ErrorCode::HeaderMalformed,
            Self::Claims { .. } => ErrorCode::ClaimsMalformed,
            Self::UnsupportedCritical { .. } => ErrorCode::UnsupportedCritical,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { actual, max } => {
                write!(f, "token is {actual} bytes, more than the maximum of {max}")
            }
            Self::Malformed { segments } => {
                match segments {
                    0 => f.write_str("token is empty, expected three segments"),
                    1 => f.write_str("token has one segment, expected three"),
                    2 => f.write_str("token has two segments, expected three"),
                    3 => f.write_str("token has an empty header or payload segment"),
                    _ => f.write_str("token has more than three segments"),
                }
            }
            Self::Base64 { segment } => {
                write!(f, "token {segment} is not canonical unpadded base64url")
            }
            Self::Header { reason } => write!(f, "token header is invalid: {reason}"),
            Self::Claims { reason } => write!(f, "token claims are invalid: {reason}"),
            Self::UnsupportedCritical { names } => {
                f.write_str("token header lists critical extensions that are not supported")?;
                for (index, name) in names.iter().take(4).enumerate() {
                    let separator = if index == 0 { ": " } else { ", " };
                    write!(f, "{separator}{}", Quoted(name))?;
                }
                Ok(())
            }
        }
    }
}

/// Failure to use a JWKS document ([RFC 7517 §5](https://www.rfc-editor.org/rfc/rfc7517#section-5)).
///
/// Single keys that cannot be used do not fail the set: they are recorded as
/// [`crate::jwks::SkippedKey`] and the rest stays usable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySetError {
    /// The document is larger than the limit; nothing was parsed.
    TooLarge {
        /// Size of the document in bytes.
        actual: usize,
        /// Maximum in bytes.
        max: usize,
    },
    /// The document is not a JSON object with a `keys` array.
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The `keys` array has more entries than the limit.
    TooManyKeys {
        /// Number of entries.
        actual: usize,
        /// Maximum number of entries.
        max: usize,
    },
    /// No entry is a usable signature-verification key.
    NoUsableKey {
        /// Number of entries skipped.
        skipped: usize,
    },
}

impl KeySetError {
    /// Returns the stable code.
    pub const fn code(&self) -> ErrorCode {
        ErrorCode::JwksInvalid
    }
}

impl fmt::Display for KeySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { actual, max } => {
                write!(f, "key set is {actual} bytes, more than the maximum of {max}")
            }
            Self::Malformed { reason } => write!(f, "key set is invalid: {reason}"),
            Self::TooManyKeys { actual, max } => {
                write!(f, "key set has {actual} keys, more than the maximum of {max}")
            }
            Self::NoUsableKey { skipped } => write!(
                f,
                "key set has no usable signature key ({skipped} entries skipped)"
            ),
        }
    }
}

/// Registered or policy-named claim, for messages.
pub type ClaimName = String;

/// Failure to verify a token against a key set and a policy.
///
/// Produced by [`crate::verify::Verifier::verify`]; the first failing check in the
/// documented order wins.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The request carries no token where the provider looks for one.
    Missing,
    /// A header or parameter uses the token's scheme or name but is not well formed.
    MalformedCredential {
        /// Where: a header, parameter or cookie name.
        location: String,
    },
    /// The request carries more than one token for a provider
    /// ([RFC 6750 §2](https://www.rfc-editor.org/rfc/rfc6750#section-2): one method only).
    MultipleTokens,
    /// The token could not be parsed.
    Parse(ParseError),
    /// The header's `alg` is not in the policy's allowlist.
    AlgorithmNotAllowed {
        /// The `alg` value from the header.
        alg: String,
    },
    /// No key matches the token's `kid`.
    KeyNotFound {
        /// The token's `kid`, if it had one.
        kid: Option<String>,
    },
    /// Keys match, but none may verify this algorithm.
    KeyUnusable {
        /// The token's `kid`, if it had one.
        kid: Option<String>,
        /// Why the closest candidate is unusable.
        reason: String,
    },
    /// The signature has the wrong length for the algorithm.
    SignatureLength {
        /// Expected length in bytes.
        expected: usize,
        /// Actual length in bytes.
        actual: usize,
    },
    /// The signature does not verify with any candidate key.
    Signature,
    /// The header's `typ` or the token-type claim is not the expected one.
    TokenType {
        /// What the policy requires.
        expected: String,
        /// What the token has (`None` when absent).
        actual: Option<String>,
    },
    /// `exp` has passed: `now >= exp + leeway`.
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `nbf` or `iat` lies beyond `now + leeway`, or `nbf` is not before `exp`.
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// The claim's value.
        value: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iat` is older than the policy's maximum token age.
    TooOld {
        /// The token's `iat`.
        iat: i64,
        /// Maximum age in seconds.
        max_age: u64,
    },
    /// The token's lifetime exceeds the policy's maximum.
    LifetimeTooLong {
        /// Lifetime in seconds (`exp - iat`, or `exp - now` without `iat`).
        lifetime: i64,
        /// Maximum in seconds.
        max: u64,
    },
    /// A claim required by the policy is absent.
    MissingClaim {
        /// The claim's name or path.
        claim: ClaimName,
    },
    /// `iss` is not an accepted issuer.
    Issuer {
        /// The token's `iss`.
        actual: String,
    },
    /// `aud` contains none of the accepted audiences.
    Audience {
        /// The token's audiences (at most four shown in messages).
        actual: Vec<String>,
    },
    /// `sub` does not match the policy.
    Subject {
        /// The token's `sub`.
        actual: String,
    },
    /// `client_id` (or `azp`) is not an accepted client.
    ClientNotAllowed {
        /// The token's client identifier.
        actual: String,
    },
    /// A claim has a value other than the required one.
    ClaimValue {
        /// The claim's name or path.
        claim: ClaimName,
    },
    /// A required scope is missing
    /// ([RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1) `insufficient_scope`).
    InsufficientScope {
        /// The scopes that are missing (all-of) or the alternatives (any-of).
        missing: Vec<String>,
    },
    /// A required role is missing.
    InsufficientRole {
        /// The roles that are missing (all-of) or the alternatives (any-of).
        missing: Vec<String>,
    },
    /// No key set is available.
    JwksUnavailable {
        /// Why, for logs.
        reason: String,
    },
    /// A DPoP proof is missing or invalid.
    DpopProof {
        /// What is wrong.
        reason: String,
    },
    /// The server requires a fresh DPoP nonce.
    DpopNonceRequired,
    /// The introspection endpoint reports the token as not active
    /// ([RFC 7662 §2.2](https://www.rfc-editor.org/rfc/rfc7662#section-2.2)): expired,
    /// revoked, or never issued.
    Inactive,
    /// The token's `jti` is on the provider's revocation list.
    Revoked {
        /// The revoked `jti`.
        jti: String,
    },
    /// No introspection answer is available.
    IntrospectionUnavailable {
        /// Why, for logs.
        reason: String,
    },
    /// No revocation list is available.
    RevocationListUnavailable {
        /// Why, for logs.
        reason: String,
    },
}

impl VerifyError {
    /// Returns the stable code.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::TokenMissing,
            Self::MalformedCredential { .. } => ErrorCode::AuthorizationMalformed,
            Self::MultipleTokens => ErrorCode::TokenMultiple,
            Self::Parse(error) => error.code(),
            Self::AlgorithmNotAllowed { .. } => ErrorCode::AlgorithmNotAllowed,
            Self::KeyNotFound { .. } => ErrorCode::KeyNotFound,
            Self::KeyUnusable { .. } => ErrorCode::KeyUnusable,
            Self::SignatureLength { .. } => ErrorCode::SignatureLengthInvalid,
            Self::Signature => ErrorCode::SignatureInvalid,
            Self::TokenType { .. } => ErrorCode::TokenTypeInvalid,
            Self::Expired { .. } => ErrorCode::TokenExpired,
            Self::NotYetValid { .. } => ErrorCode::TokenNotYetValid,
            Self::TooOld { .. } => ErrorCode::TokenTooOld,
            Self::LifetimeTooLong { .. } => ErrorCode::LifetimeTooLong,
            Self::MissingClaim { .. } => ErrorCode::ClaimMissing,
            Self::Issuer { .. } => ErrorCode::IssuerInvalid,
            Self::Audience { .. } => ErrorCode::AudienceInvalid,
            Self::Subject { .. } => ErrorCode::SubjectInvalid,
            Self::ClientNotAllowed { .. } => ErrorCode::ClientNotAllowed,
            Self::ClaimValue { .. } => ErrorCode::ClaimValueInvalid,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::InsufficientRole { .. } => ErrorCode::InsufficientRole,
            Self::JwksUnavailable { .. } => ErrorCode::JwksUnavailable,
            Self::DpopProof { .. } => ErrorCode::DpopProofInvalid,
            Self::DpopNonceRequired => ErrorCode::DpopNonceRequired,
            Self::Inactive => ErrorCode::TokenInactive,
            Self::Revoked { .. } => ErrorCode::TokenRevoked,
            Self::IntrospectionUnavailable { .. } => ErrorCode::IntrospectionUnavailable,
            Self::RevocationListUnavailable { .. } => ErrorCode::RevocationListUnavailable,
        }
    }

    /// Returns the space-separated scopes to put in an `insufficient_scope` challenge.
    pub fn required_scope(&self) -> Option<String> {
        match self {
            Self::InsufficientScope { missing } => Some(missing.join(" ")),
            _ => None,
        }
    }
}

impl From<ParseError> for VerifyError {
    fn from(error: ParseError) -> Self {
        Self::Parse(error)
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, values: &[String]) -> fmt::Result {
    for (index, value) in values.iter().take(4).enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Quoted(value))?;
    }
    if values.len() > 4 {
        write!(f, " and {} more", values.len() - 4)?;
    }
    Ok(())
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("the request has no bearer token"),
            Self::MalformedCredential { location } => {
                write!(f, "credential in {} is malformed; send exactly `Bearer <token>`", Quoted(location))
            }
            Self::MultipleTokens => f.write_str("the request carries more than one token; send exactly one"),
            Self::Parse(error) => fmt::Display::fmt(error, f),
            Self::AlgorithmNotAllowed { alg } => {
                write!(f, "algorithm {} is not allowed by the policy", Quoted(alg))
            }
            Self::KeyNotFound { kid: Some(kid) } => {
                write!(f, "no key with kid {} in the key set", Quoted(kid))
            }
            Self::KeyNotFound { kid: None } => {
                f.write_str("token has no kid and no key in the key set fits it")
            }
            Self::KeyUnusable { kid: Some(kid), reason } => {
                write!(f, "key {} cannot verify this token: {reason}", Quoted(kid))
            }
            Self::KeyUnusable { kid: None, reason } => {
                write!(f, "no key can verify this token: {reason}")
            }
            Self::SignatureLength { expected, actual } => write!(
                f,
                "signature is {actual} bytes, the algorithm requires {expected}"
            ),
            Self::Signature => f.write_str("signature does not verify"),
            Self::TokenType { expected, actual: Some(actual) } => write!(
                f,
                "token type is {}, expected {}",
                Quoted(actual),
                Quoted(expected)
            ),
            Self::TokenType { expected, actual: None } => {
                write!(f, "token type is missing, expected {}", Quoted(expected))
            }
            Self::Expired { exp, now } => write!(f, "token expired at {exp} (now {now})"),
            Self::NotYetValid { claim, value, now } => {
                write!(f, "token is not valid yet: {claim} is {value} (now {now})")
            }
            Self::TooOld { iat, max_age } => write!(
                f,
                "token was issued at {iat}, more than {max_age} seconds ago"
            ),
            Self::LifetimeTooLong { lifetime, max } => write!(
                f,
                "token lifetime of {lifetime} seconds exceeds the maximum of {max}"
            ),
            Self::MissingClaim { claim } => {
                write!(f, "required claim {} is missing", Quoted(claim))
            }
            Self::Issuer { actual } => {
                write!(f, "issuer {} is not accepted", Quoted(actual))
            }
            Self::Audience { actual } => {
                if actual.is_empty() {
                    f.write_str("audience is empty")
                } else {
                    f.write_str("audience ")?;
                    write_list(f, actual)?;
                    f.write_str(" is not accepted")
                }
            }
            Self::Subject { actual } => {
                write!(f, "subject {} is not accepted", Quoted(actual))
            }
            Self::ClientNotAllowed { actual } => {
                write!(f, "client {} is not accepted", Quoted(actual))
            }
            Self::ClaimValue { claim } => {
                write!(f, "claim {} does not have the required value", Quoted(claim))
            }
            Self::InsufficientScope { missing } => {
                f.write_str("token lacks the required scope ")?;
                write_list(f, missing)
            }
            Self::InsufficientRole { missing } => {
                f.write_str("token lacks the required role ")?;
                write_list(f, missing)
            }
            Self::JwksUnavailable { reason } => write!(f, "no key set is available: {reason}"),
            Self::DpopProof { reason } => write!(f, "DPoP proof is invalid: {reason}"),
            Self::DpopNonceRequired => f.write_str("a DPoP nonce is required"),
            Self::Inactive => f.write_str("the introspection endpoint reports the token as not active"),
            Self::Revoked { jti } => write!(f, "the token's jti {} is on the revocation list", Quoted(jti)),
            Self::IntrospectionUnavailable { reason } => write!(f, "no introspection answer is available: {reason}"),
            Self::RevocationListUnavailable { reason } => write!(f, "no revocation list is available: {reason}"),
        }
    }
}

/// Failure to read a policy or filter configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The document is not valid JSON, or not a JSON object. Unknown fields and values of
    /// the wrong type are [`ConfigError::InvalidValue`] at their path.
    Syntax {
        /// The JSON parser's message, with the position.
        message: String,
    },
    /// A field has a value outside what is allowed.
    InvalidValue {
        /// Path of the field, e.g. `providers[0].algorithms[1]`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ConfigError {
    /// Returns the stable code.
    pub const fn code(&self) -> ErrorCode {
        ErrorCode::ConfigInvalid
    }

    /// Builds an [`ConfigError::InvalidValue`]. Cold and out of line: configuration
    /// code calls it in many places, and inlined it made the filter larger.
    #[cold]
    #[inline(never)]
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidValue { field: field.into(), message: message.into() }
    }

    /// Builds the [`ConfigError::Syntax`] for a document of `size` bytes, over
    /// [`crate::policy::MAX_CONFIG_BYTES`].
    pub fn too_large(size: usize) -> Self {
        let limit = crate::policy::MAX_CONFIG_BYTES;
        Self::Syntax { message: alloc::format!("the document has {size} bytes, more than the maximum of {limit}") }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { message } => write!(f, "configuration is invalid: {message}"),
            Self::InvalidValue { field, message } => {
                write!(f, "configuration field `{field}` is invalid: {message}")
            }
        }
    }
}

#[cfg(feature = "std")]
mod std_impls {
    extern crate std;
    impl std::error::Error for super::ParseError {}
    impl std::error::Error for super::KeySetError {}
    impl std::error::Error for super::VerifyError {}
    impl std::error::Error for super::ConfigError {}
}
