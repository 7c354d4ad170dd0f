//! The single entry point: a token, a key set, a policy and the current time in; a
//! [`VerifiedToken`] or the first failure out.
//!
//! Checks run in this fixed order and the first failure wins:
//!
//! 1. size (`max_token_bytes`), before any decoding;
//! 2. structure: three segments, canonical base64url, header JSON, `crit`;
//! 3. `alg` in the policy's allowlist (never chosen by the token, `none` never);
//! 4. key: by `kid`, honouring the JWK's `use`, `key_ops`, `alg`, type and curve;
//! 5. signature;
//! 6. `typ` (when the policy names a token type);
//! 7. claims JSON and the types of registered claims, then the token-type claim (when the
//!    policy names one);
//! 8. `exp`, `nbf`, `iat`, maximum age and lifetime;
//! 9. `iss`; 10. `aud`;
//! 11. required claims: RFC 9068 set, `sub`, client, further claims;
//! 12. scopes, then roles.
//!
//! The claims are parsed only after the signature verified, so unauthenticated input
//! reaches the JSON parser only through the header.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::alg::{self, Algorithm};
use crate::claims::{self, Claims};
use crate::error::VerifyError;
use crate::jwks::KeySet;
use crate::policy::{normalize_media_type, Policy};
use crate::token::{parse_token, Header};

/// A token whose signature and claims passed every check of a policy.
///
/// Only [`Verifier::verify`] creates one.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedToken {
    header: Header,
    claims: Claims,
    algorithm: Algorithm,
    kid: Option<String>,
    key_thumbprint: [u8; 32],
}

impl VerifiedToken {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The typed registered claims and the whole claims object.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The whole claims object.
    pub fn claims_map(&self) -> &Map<String, Value> {
        &self.claims.all
    }

    /// The algorithm that verified the signature.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `kid` of the key that verified the signature, if it had one.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The RFC 7638 thumbprint of the key that verified the signature.
    pub fn key_thumbprint(&self) -> &[u8; 32] {
        &self.key_thumbprint
    }
}

/// Verifies tokens against one policy.
#[derive(Clone, Debug)]
pub struct Verifier {
    policy: Policy,
}

impl Verifier {
    /// Creates a verifier for a checked policy.
    pub fn new(policy: Policy) -> Self {
        Self { policy }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Verifies `token` with `keys` at `now` (seconds since the Unix epoch).
    ///
    /// The verifier never reads a clock and never fetches keys: both come from the caller.
    /// Keys named by the token header (`jwk`, `jku`, `x5u`, `x5c`) are never used.
    ///
    /// # Errors
    ///
    /// The first failing check, in the order documented at the top of this module.
    ///
    /// # Security
    ///
    /// The token's `alg` only selects among the policy's algorithms; an algorithm outside
    /// the allowlist fails before any key is looked up.
    pub fn verify(&self, token: &str, keys: &KeySet, now: u64) -> Result<VerifiedToken, VerifyError> {
        verify_token(token, keys, &self.policy, now)
    }
}

/// Verifies one token; see [`Verifier::verify`].
///
/// # Errors
///
/// As [`Verifier::verify`].
pub fn verify_token(token: &str, keys: &KeySet, policy: &Policy, now: u64) -> Result<VerifiedToken, VerifyError> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let untrusted = parse_token(token, policy.max_token_bytes)?;
        let header = untrusted.header();

        let algorithm = Algorithm::from_name(&header.alg)
            .filter(|alg| policy.algorithms.contains(alg))
            .ok_or_else(|| VerifyError::AlgorithmNotAllowed { alg: header.alg.clone() })?;

        let candidates = keys.select(header, algorithm)?;
        let message = untrusted.signing_input().as_bytes();
        let mut failure = VerifyError::Signature;
        let mut verified_by = None;
        for jwk in candidates {
            match alg::verify_signature(algorithm, &jwk.key, message, untrusted.signature()) {
                Ok(()) => {
                    verified_by = Some(jwk);
                    break;
                }
                // A wrong length is more specific than a bad signature; keep it unless a
                // later key reports otherwise.
                Err(error @ VerifyError::SignatureLength { .. }) => failure = error,
                Err(_) => {}
            }
        }
        let jwk = verified_by.ok_or(failure)?;

        if let Some(expected) = &policy.token_type {
            let actual = header.typ.as_deref().map(normalize_media_type);
            if actual.as_deref() != Some(expected.as_str()) {
                return Err(VerifyError::TokenType { expected: expected.clone(), actual: header.typ.clone() });
            }
        }

        let claims = Claims::from_json(untrusted.payload())?;
        claims::check_token_type_claim(&claims, policy)?;
        claims::check_time(&claims, policy, now)?;
        claims::check_issuer(&claims, policy)?;
        claims::check_audience(&claims, policy)?;
        claims::check_identity(&claims, policy)?;
        claims::check_authorization(&claims, policy)?;

        Ok(VerifiedToken {
            header: untrusted.into_header(),
            claims,
            algorithm,
            kid: jwk.kid.clone(),
            key_thumbprint: *jwk.thumbprint(),
        })
}

/// Scopes of a verified token, for callers that authorize further themselves.
pub fn scopes(token: &VerifiedToken) -> Vec<&str> {
    token.claims.scopes.iter().map(String::as_str).collect()
}
