//! DPoP at the gate ([RFC 9449 §7](https://www.rfc-editor.org/rfc/rfc9449#section-7)): the
//! proof of one request, and the `WWW-Authenticate` challenges of a provider that accepts
//! DPoP.
//!
//! The proof's `htu` is compared with the URL the gate reconstructs from `:scheme`,
//! `:authority` and `:path`, or from the provider's `dpop.origin` and `:path` when TLS
//! ends before the gate and `:scheme` or `:authority` differ from what the client used.

use alloc::string::String;
use alloc::vec::Vec;

use super::RequestParts;
use crate::bearer::Challenge;
use crate::config::{DpopMode, DpopSettings};
use crate::dpop::{verify_proof, ProofRequest, VerifiedProof};
use crate::error::{ErrorCode, VerifyError};

fn invalid(reason: &str) -> VerifyError {
    VerifyError::DpopProof { reason: String::from(reason) }
}

/// Returns the URL a proof's `htu` must name: `dpop.origin` or `:scheme://:authority`,
/// then `:path`.
pub fn request_url(request: &RequestParts<'_>, settings: &DpopSettings) -> String {
    match &settings.origin {
        Some(origin) => alloc::format!("{origin}{}", request.path),
        None => alloc::format!("{}://{}{}", request.scheme, request.authority, request.path),
    }
}

/// Checks the one `DPoP` header of a request whose token came as `Authorization: DPoP`:
/// the proof's signature, `typ`, `alg`, `htm`, `htu`, `iat`, `ath` and nonce
/// ([`verify_proof`]).
///
/// Does NOT check replay or the token's binding; the gate does both after the token.
///
/// # Errors
///
/// [`VerifyError::DpopProof`] for a missing, repeated or invalid proof, and
/// [`VerifyError::DpopNonceRequired`] for a missing or stale nonce.
pub fn check_request_proof(
    request: &RequestParts<'_>,
    settings: &DpopSettings,
    token: &str,
    nonces: &[&str],
    now: u64,
) -> Result<VerifiedProof, VerifyError> {
    let mut proofs = request.headers.iter().filter(|(name, _)| *name == "dpop").map(|(_, value)| *value);
    let proof = match (proofs.next(), proofs.next()) {
        (Some(proof), None) => proof.trim_matches([' ', '\t']),
        (None, _) => return Err(invalid("the request has no `DPoP` header")),
        (Some(_), Some(_)) => return Err(invalid("the request has more than one `DPoP` header")),
    };
    let url = request_url(request, settings);
    let proof_request = ProofRequest { method: request.method, url: &url, access_token: Some(token), nonces };
    verify_proof(proof, &proof_request, &settings.policy, now)
}

/// The error for a token sent as `Authorization: DPoP` to a provider without DPoP.
pub fn not_enabled() -> VerifyError {
    invalid("DPoP is not enabled for this provider")
}

/// The error for a bearer token sent to a provider that requires DPoP.
pub fn bearer_refused() -> VerifyError {
    invalid("the provider requires DPoP: send the token as `Authorization: DPoP <token>` with a `DPoP` proof")
}

/// The error for a token bound to a key (`cnf.jkt`) sent as a bearer token.
pub fn bound_token_as_bearer(dpop_enabled: bool) -> VerifyError {
    if dpop_enabled {
        invalid("the token is bound to a key (`cnf.jkt`): send it as `Authorization: DPoP <token>` with a `DPoP` proof")
    } else {
        invalid("the token is bound to a key (`cnf.jkt`), and DPoP is not enabled for this provider")
    }
}

/// Builds the challenges of a denial, the one that carries the error first.
///
/// Without DPoP settings: one `Bearer` challenge. With `required`: one `DPoP` challenge.
/// With `allowed`: both, the error on the scheme the client used (`DPoP` when its token
/// came as `Authorization: DPoP`, else `Bearer`). `DPoP` challenges list the allowed proof
/// algorithms in `algs`. `details` are the description and scope, left out when the
/// configuration strips details.
pub fn challenges(
    realm: &str,
    code: ErrorCode,
    details: Option<(String, Option<String>)>,
    dpop: Option<&DpopSettings>,
    dpop_presented: bool,
) -> Vec<Challenge> {
    let with_error = |mut challenge: Challenge| {
        challenge.code = Some(code);
        if let Some((description, scope)) = &details {
            challenge.description = Some(description.clone());
            challenge.scope = scope.clone();
        }
        challenge
    };
    let bearer = Challenge::bearer(Some(realm), None);
    let Some(settings) = dpop else { return alloc::vec![with_error(bearer)] };
    let dpop_challenge = Challenge { scheme: "DPoP", algs: Some(settings.algs()), ..Challenge::bearer(Some(realm), None) };
    match (settings.mode, dpop_presented) {
        (DpopMode::Required, _) => alloc::vec![with_error(dpop_challenge)],
        (DpopMode::Allowed, true) => alloc::vec![with_error(dpop_challenge), bearer],
        (DpopMode::Allowed, false) => alloc::vec![with_error(bearer), dpop_challenge],
    }
}
