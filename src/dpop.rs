//! DPoP proofs ([RFC 9449](https://www.rfc-editor.org/rfc/rfc9449)): sender-constrained
//! access tokens.
//!
//! A DPoP proof is a JWT the client signs for each request with a key it holds. The proof
//! carries its public key in the `jwk` header member, the only place this crate ever takes
//! a key from a token, and only to check that proof. [`verify_proof`] checks one proof
//! against the request ([RFC 9449 §4.3](https://www.rfc-editor.org/rfc/rfc9449#section-4.3));
//! [`check_binding`] checks that the access token is bound to the proof's key
//! (`cnf.jkt`, [§6.1](https://www.rfc-editor.org/rfc/rfc9449#section-6.1)).
//!
//! Replay protection needs state: the caller records each returned `jti` in a bounded
//! cache for the proof lifetime and rejects repeats ([`replay`]). Server-issued nonces
//! come from [`nonce`].

pub mod nonce;
pub mod replay;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::alg::{self, Algorithm};
use crate::claims::MAX_NUMERIC_DATE;
use crate::error::VerifyError;
use crate::json;
use crate::jwks::{self, KeySetOptions};
use crate::token::parse_token;

/// Longest DPoP proof accepted, in bytes; proofs carry one public key and a few claims.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// Longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 256;

/// Default window for `iat`, in seconds, before and after now.
pub const DEFAULT_PROOF_MAX_AGE_SECONDS: u64 = 300;

/// What a provider accepts in DPoP proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopPolicy {
    /// Allowed proof algorithms; asymmetric only.
    pub algorithms: Vec<Algorithm>,
    /// How far `iat` may lie from now, in seconds.
    pub max_age_seconds: u64,
    /// Whether proofs must carry a server-issued nonce.
    pub require_nonce: bool,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        Self {
            algorithms: alloc::vec![Algorithm::ES256, Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA],
            max_age_seconds: DEFAULT_PROOF_MAX_AGE_SECONDS,
            require_nonce: false,
        }
    }
}

/// The request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct ProofRequest<'a> {
    /// The HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// The request URL as the client addressed it: `scheme://authority/path?query`.
    pub url: &'a str,
    /// The access token presented with the proof, for the `ath` check.
    pub access_token: Option<&'a str>,
    /// Nonces the server currently accepts (most recent first); empty when none is issued.
    pub nonces: &'a [&'a str],
}

/// A proof that passed every stateless check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof key, unpadded base64url.
    pub jkt: String,
    /// The proof's `jti`, to record in the replay cache.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: i64,
}

fn invalid(reason: impl Into<String>) -> VerifyError {
    VerifyError::DpopProof { reason: reason.into() }
}

/// Verifies a DPoP proof for a request at `now` (seconds since the Unix epoch).
///
/// Checks, in order: size; compact JWS syntax; `typ` is `dpop+jwt`; `alg` is allowed and
/// asymmetric; `jwk` is a public key fitting `alg`; the signature; `jti`, `htm`, `htu`
/// and `iat` are present with the right types; `htm` equals the method; `htu` equals the
/// URL after normalisation; `iat` is within the window; `ath` is the hash of the access
/// token when one is presented; the nonce when required or issued.
///
/// Does NOT check replay (`jti` uniqueness) or the token binding ([`check_binding`]).
///
/// # Errors
///
/// [`VerifyError::DpopProof`] naming the failed check, or
/// [`VerifyError::DpopNonceRequired`] when a nonce is missing or stale.
pub fn verify_proof(proof: &str, request: &ProofRequest<'_>, policy: &DpopPolicy, now: u64) -> Result<VerifiedProof, VerifyError> {
    let untrusted = parse_token(proof, MAX_PROOF_BYTES).map_err(|error| invalid(error.to_string()))?;
    let header = untrusted.header();
    if !header.typ.as_deref().is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(invalid("`typ` must be `dpop+jwt`"));
    }
    let algorithm = Algorithm::from_name(&header.alg)
        .filter(|alg| !alg.is_symmetric() && policy.algorithms.contains(alg))
        .ok_or_else(|| invalid(alloc::format!("algorithm {} is not allowed for proofs", crate::error::Quoted(&header.alg))))?;
    let jwk = match header.other.get("jwk") {
        Some(Value::Object(members)) => members,
        _ => return Err(invalid("the `jwk` header member is missing or not an object")),
    };
    let key = jwks::import(jwk, KeySetOptions::default()).map_err(|reason| invalid(alloc::format!("the proof key is invalid: {reason}")))?;
    if let Some(reason) = alg::key_mismatch(algorithm, &key.key) {
        return Err(invalid(reason));
    }
    alg::verify_signature(algorithm, &key.key, untrusted.signing_input().as_bytes(), untrusted.signature())
        .map_err(|_| invalid("the proof signature does not verify"))?;

    let claims = json::parse_object(untrusted.payload()).map_err(|reason| invalid(alloc::format!("claims are invalid: {reason}")))?;
    let text = |name: &str| -> Result<&str, VerifyError> {
        match claims.get(name) {
            Some(Value::String(value)) => Ok(value.as_str()),
            Some(_) => Err(invalid(alloc::format!("`{name}` must be a string"))),
            None => Err(invalid(alloc::format!("`{name}` is missing"))),
        }
    };
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(invalid(alloc::format!("`jti` must be 1 to {MAX_JTI_BYTES} bytes")));
    }
    if text("htm")? != request.method {
        return Err(invalid("`htm` does not match the request method"));
    }
    let htu = normalize_url(text("htu")?).ok_or_else(|| invalid("`htu` is not an absolute http(s) URL"))?;
    let target = normalize_url(request.url).ok_or_else(|| invalid("the request URL cannot be normalised"))?;
    if htu != target {
        return Err(invalid("`htu` does not match the request URL"));
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(number)) => number.as_i64().filter(|iat| (0..=MAX_NUMERIC_DATE).contains(iat)),
        _ => None,
    }
    .ok_or_else(|| invalid("`iat` is missing or not an integer NumericDate"))?;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let window = i64::try_from(policy.max_age_seconds).unwrap_or(i64::MAX);
    if iat > now.saturating_add(window) || iat < now.saturating_sub(window) {
        return Err(invalid("`iat` is outside the accepted window"));
    }
    match (request.access_token, claims.get("ath")) {
        (Some(token), Some(Value::String(ath))) => {
            let expected = Base64UrlUnpadded::encode_string(&Sha256::digest(token.as_bytes()));
            if !bool::from(expected.as_bytes().ct_eq(ath.as_bytes())) {
                return Err(invalid("`ath` does not match the access token"));
            }
        }
        (Some(_), _) => return Err(invalid("`ath` is missing or not a string")),
        (None, _) => {}
    }
    if policy.require_nonce || !request.nonces.is_empty() {
        match claims.get("nonce") {
            Some(Value::String(nonce)) if request.nonces.contains(&nonce.as_str()) => {}
            _ => return Err(VerifyError::DpopNonceRequired),
        }
    }
    Ok(VerifiedProof { jkt: key.thumbprint_b64(), jti: jti.to_string(), iat })
}

/// Checks that an access token's `cnf.jkt` names the proof key.
///
/// # Errors
///
/// [`VerifyError::DpopProof`] when `cnf.jkt` is absent or differs.
pub fn check_binding(claims: &serde_json::Map<String, Value>, proof: &VerifiedProof) -> Result<(), VerifyError> {
    let jkt = claims
        .get("cnf")
        .and_then(Value::as_object)
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the access token is not bound to a key (`cnf.jkt` is missing)"))?;
    if bool::from(jkt.as_bytes().ct_eq(proof.jkt.as_bytes())) {
        Ok(())
    } else {
        Err(invalid("the proof key is not the key the access token is bound to"))
    }
}

/// Whether a token's claims bind it to a DPoP key.
pub fn is_bound(claims: &serde_json::Map<String, Value>) -> bool {
    claims.get("cnf").and_then(Value::as_object).is_some_and(|cnf| cnf.contains_key("jkt"))
}

/// Normalises an http(s) URL for `htu` comparison
/// ([RFC 9449 §4.3](https://www.rfc-editor.org/rfc/rfc9449#section-4.3), RFC 3986 §6.2.2
/// and §6.2.3): scheme and host in lower case, default ports removed, an empty path as
/// `/`, percent-encodings in upper case, unreserved characters decoded, and the query and
/// fragment dropped.
pub fn normalize_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut authority = authority.to_ascii_lowercase();
    if let Some(host) = authority.strip_suffix(&alloc::format!(":{default_port}")) {
        authority = host.to_string();
    } else if let Some(host) = authority.strip_suffix(':') {
        authority = host.to_string();
    }
    let path = if path.is_empty() { "/" } else { path };
    let mut normalized = alloc::format!("{scheme}://{authority}");
    let bytes = path.as_bytes();
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = bytes.get(index + 1).and_then(|digit| char::from(*digit).to_digit(16))?;
            let low = bytes.get(index + 2).and_then(|digit| char::from(*digit).to_digit(16))?;
            let decoded = u8::try_from(high * 16 + low).ok()?;
            if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                normalized.push(char::from(decoded));
            } else {
                normalized.push_str(&alloc::format!("%{decoded:02X}"));
            }
            index += 3;
        } else {
            normalized.push(char::from(byte));
            index += 1;
        }
    }
    Some(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_normalization() {
        let cases = [
            ("https://API.example.com:443/a?x=1#f", "https://api.example.com/a"),
            ("HTTPS://api.example.com", "https://api.example.com/"),
            ("http://api.example.com:80/%7euser/%2f", "http://api.example.com/~user/%2F"),
            ("https://api.example.com:8443/a", "https://api.example.com:8443/a"),
            ("https://[::1]:443/a", "https://[::1]/a"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_url(input).as_deref(), Some(expected), "{input}");
        }
        for bad in ["ftp://x/a", "https:///a", "https://user@x/a", "https://x/%zz", "/relative"] {
            assert_eq!(normalize_url(bad), None, "{bad}");
        }
    }
}
