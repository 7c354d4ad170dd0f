//! The request-level decision shared by the Envoy filter and the edge worker: which
//! providers a request needs, where its tokens are, whether they verify, and whether to
//! forward the request or reject it.
//!
//! The gate does no I/O. Keys, revocation lists, introspection responses and the DPoP
//! replay cache come through [`GateState`]. When something is not in hand yet, the
//! decision is [`Decision::Pending`], and the adapter fetches it and runs the decision
//! again. Verified tokens may be stored in a [`TokenCache`].
//!
//! Per provider, a token is checked in this order, and the first failure wins:
//! 1. the DPoP proof, for a token sent as `Authorization: DPoP` ([`dpop`]);
//! 2. the JWT (signature and claims), unless the provider only introspects;
//! 3. the introspection response, when the provider introspects
//!    ([`crate::introspection`]);
//! 4. the key binding: a proof's key must be the token's `cnf.jkt`, and a token bound to a
//!    key must not come as a bearer token;
//! 5. the revocation list ([`crate::revocation`]).
//!
//! DPoP proofs of the providers that let a request through are recorded in the replay
//! cache last, once the decision is final, so a decision that waits and runs again does
//! not see its own proof as a replay.
//!
//! Rules for tokens in a request:
//! - a provider reads its token from its configured headers, query parameters and cookies;
//!   more than one token for one provider is `token_multiple` (400), as RFC 6750 §2 allows
//!   one method per request, and two `Authorization` headers count as two tokens;
//! - `requires_all` needs every listed provider to verify its own token, which is how
//!   Envoy's `jwt_authn` treats several tokens; `requires_any` passes when one of them
//!   verifies, and reports the first failure otherwise;
//! - a token in a place that no provider of the matched rule reads is ignored and
//!   forwarded unchanged;
//! - each provider verifies at most once per decision.
//!
//! Headers the gate writes (`claim_to_headers`, `forward_payload_header`) are removed from
//! every request first, whatever the decision, so a client cannot set them itself.

pub mod cache;
pub mod dpop;
pub mod state;

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use crate::bearer::{self, Credential};
use crate::claims::{self, Claims};
use crate::config::{DpopMode, Gate, KeySource, Provider, Requirement};
use crate::dpop::replay::ReplayCheck;
use crate::dpop::VerifiedProof;
use crate::error::{ErrorCode, ParseError, VerifyError};
use crate::introspection::{self, IntrospectionAnswer};
use crate::jwks::KeySet;
use crate::verify::{verify_token, VerifiedToken};

pub use cache::{EntryMatch, TokenCache, TokenTail};
pub use state::{GateState, IntrospectionLookup, KeyLookup, ListLookup};

/// The parts of a request the gate reads.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`, with the query string.
    pub path: &'a str,
    /// `:scheme`.
    pub scheme: &'a str,
    /// `:authority`.
    pub authority: &'a str,
    /// Headers with lower-case names, repeated names kept in order.
    pub headers: &'a [(&'a str, &'a str)],
}

/// State for a gate whose providers all have local keys and use no revocation list,
/// introspection or DPoP.
pub struct NoRemoteKeys;

impl GateState for NoRemoteKeys {
    fn lookup(&mut self, _index: usize) -> KeyLookup<'_> {
        KeyLookup::Unavailable(String::from("remote keys are not available here"))
    }

    fn refetch_for_unknown_kid(&mut self, _index: usize) -> bool {
        false
    }
}

/// The gate's decision on a request.
#[derive(Debug)]
pub enum Decision {
    /// Forward it, after changing these headers.
    Allow(Allowed),
    /// Reject it with this reply.
    Deny(Denial),
    /// Wait for keys of these providers, then decide again.
    Pending {
        /// Provider indices.
        providers: Vec<usize>,
    },
}

/// Header changes for an allowed request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Headers to remove first (lower case).
    pub remove_headers: Vec<String>,
    /// Headers to set afterwards (`:path` may be among them when a query token is removed).
    pub set_headers: Vec<(String, String)>,
    /// Providers whose tokens verified.
    pub verified: Vec<usize>,
    /// The request is a CORS preflight let through by `bypass_cors_preflight`.
    pub cors_preflight: bool,
    /// Headers to add to the response, e.g. a fresh `dpop-nonce` (lower case).
    pub response_headers: Vec<(String, String)>,
}

/// A reply for a rejected request.
#[derive(Debug, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: ErrorCode,
    /// The provider whose failure is reported.
    pub provider: Option<usize>,
    /// Reply headers, `www-authenticate` among them.
    pub headers: Vec<(String, String)>,
    /// Reply body.
    pub body: String,
    /// The failure, for logs; never contains the token.
    pub message: String,
}

/// A token that passed its provider's checks.
#[derive(Clone, Debug)]
pub enum Authenticated {
    /// A JWT, verified (and, with `introspection.mode` `after_jwt`, introspected as active).
    Jwt(Arc<VerifiedToken>),
    /// An opaque token the introspection endpoint reported as active. Its claims are the
    /// response's members.
    Introspected(Arc<IntrospectionAnswer>),
}

impl Authenticated {
    /// Returns the typed claims.
    pub fn claims(&self) -> &Claims {
        match self {
            Self::Jwt(token) => token.claims(),
            Self::Introspected(answer) => answer.claims(),
        }
    }

    /// Returns the whole claims object.
    pub fn claims_map(&self) -> &Map<String, Value> {
        &self.claims().all
    }
}

/// The place a token was found: the name of its header, query parameter or cookie.
#[derive(Debug)]
enum Found<'r> {
    Header(&'r str),
    Param(&'r str),
    Cookie(&'r str),
}

/// The scheme a client used to present a token in `Authorization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// Bearer, or any configured source other than `Authorization: DPoP`.
    Bearer,
    /// `Authorization: DPoP`, with a proof in the `DPoP` header.
    Dpop,
}

#[derive(Debug)]
struct Presented<'r> {
    token: Authenticated,
    found: Found<'r>,
    proof: Option<VerifiedProof>,
}

#[derive(Debug)]
enum Outcome<'r> {
    Missing,
    Verified(Presented<'r>),
    Failed(VerifyError),
    Pending,
}

/// The reason a provider's check stopped before an outcome: waiting for state, or a failure.
enum Stop {
    Pending,
    Failed(VerifyError),
}

impl From<VerifyError> for Stop {
    fn from(error: VerifyError) -> Self {
        Self::Failed(error)
    }
}

/// The facts about how the reported provider's token was presented that a denial needs.
#[derive(Debug, Default)]
struct DenialContext {
    /// The token came as `Authorization: DPoP`.
    dpop_presented: bool,
    /// A nonce to send in `DPoP-Nonce`.
    nonce: Option<String>,
}

enum Evaluation {
    Pass(Vec<usize>),
    Fail(usize, VerifyError),
    Missing(Option<usize>),
    Pending(Vec<usize>),
}

struct Evaluator<'g, 'r, K: GateState> {
    gate: &'g Gate,
    request: RequestParts<'r>,
    keys: &'r mut K,
    cache: &'r mut TokenCache,
    now: u64,
    final_attempt: bool,
    /// Per provider, filled in as the requirement needs it.
    slots: Vec<Slot<'r>>,
    /// The last token that [`extract`] looked up in the cache, with its tail and the
    /// cache entry equal to it.
    looked_up: Option<(&'r str, TokenTail, Option<EntryMatch>)>,
}

/// A provider's outcome once checked, and how its token was presented.
#[derive(Default)]
struct Slot<'r> {
    outcome: Option<Outcome<'r>>,
    /// The token came as `Authorization: DPoP`.
    dpop_presented: bool,
}

impl Gate {
    /// Decides a request at `now` (seconds since the Unix epoch) without a token cache.
    ///
    /// With `final_attempt`, pending keys count as unavailable: adapters pass true once a
    /// request has waited for keys as long as the configuration allows. A final attempt
    /// never returns [`Decision::Pending`].
    pub fn decide<K: GateState>(&self, request: RequestParts<'_>, keys: &mut K, now: u64, final_attempt: bool) -> Decision {
        self.decide_with_cache(request, keys, &mut TokenCache::disabled(), now, final_attempt)
    }

    /// Decides a request as [`Gate::decide`] does, looking tokens up in `cache` first and
    /// storing the ones that verify.
    ///
    /// A cached token still passes the provider's time checks at `now` and the matched
    /// rule's requirement. It is used only while the key set that verified it is served.
    pub fn decide_with_cache<K: GateState>(
        &self,
        request: RequestParts<'_>,
        keys: &mut K,
        cache: &mut TokenCache,
        now: u64,
        final_attempt: bool,
    ) -> Decision {
        // Room for the token's header and `dpop`, which a verified request removes too.
        let mut remove_headers = Vec::with_capacity(self.output_headers.len() + 2);
        remove_headers.extend(self.output_headers.iter().cloned());
        let mut allowed = Allowed { remove_headers, ..Allowed::default() };
        if self.bypass_cors_preflight && is_cors_preflight(&request) {
            allowed.cors_preflight = true;
            return Decision::Allow(allowed);
        }
        let requirement = match &self.rules {
            None => Some(Cow::Owned(Requirement::Any((0..self.providers.len()).map(Requirement::Provider).collect()))),
            Some(rules) => rules
                .iter()
                .find(|rule| rule.matches(request.method, request.path))
                .and_then(|rule| rule.requires.as_ref().map(Cow::Borrowed)),
        };
        let Some(requirement) = requirement else { return Decision::Allow(allowed) };
        let mut evaluator = Evaluator {
            gate: self,
            request,
            keys,
            cache,
            now,
            final_attempt,
            slots: (0..self.providers.len()).map(|_| Slot::default()).collect(),
            looked_up: None,
        };
        let tolerant = matches!(*requirement, Requirement::AllowMissingOrFailed);
        match evaluator.evaluate(&requirement) {
            Evaluation::Pass(mut verified) => {
                // The decision is final: record the DPoP proofs of the providers that let
                // the request through, and fail on a replay.
                for (index, error) in evaluator.record_proofs(&verified) {
                    if !tolerant {
                        let context = evaluator.denial_context(Some(index));
                        return Decision::Deny(self.deny(&request, Some(index), &error, &context));
                    }
                    verified.retain(|verified| *verified != index);
                }
                evaluator.apply_outputs(&verified, &mut allowed);
                allowed.verified = verified;
                Decision::Allow(allowed)
            }
            // The evaluator turns pending keys into failures on a final attempt. Should a
            // provider still be pending, the request fails closed.
            Evaluation::Pending(providers) if final_attempt => {
                let error = VerifyError::JwksUnavailable { reason: String::from("timed out waiting for the key set") };
                let provider = providers.first().copied();
                let context = evaluator.denial_context(provider);
                Decision::Deny(self.deny(&request, provider, &error, &context))
            }
            Evaluation::Pending(providers) => Decision::Pending { providers },
            Evaluation::Fail(provider, error) => {
                let context = evaluator.denial_context(Some(provider));
                Decision::Deny(self.deny(&request, Some(provider), &error, &context))
            }
            Evaluation::Missing(provider) => {
                let context = evaluator.denial_context(provider);
                Decision::Deny(self.deny(&request, provider, &VerifyError::Missing, &context))
            }
        }
    }

    fn deny(&self, request: &RequestParts<'_>, provider: Option<usize>, error: &VerifyError, context: &DenialContext) -> Denial {
        let code = error.code();
        let message = error.to_string();
        let realm = self.realm.clone().unwrap_or_else(|| {
            let path = request.path.split_once('?').map_or(request.path, |(path, _)| path);
            alloc::format!("{}://{}{}", request.scheme, request.authority, path)
        });
        let dpop = provider.and_then(|index| self.providers.get(index)).and_then(|provider| provider.dpop.as_ref());
        let details = (!self.strip_details).then(|| (message.clone(), error.required_scope()));
        let challenges = dpop::challenges(&realm, code, details, dpop, context.dpop_presented);
        let status = code.http_status();
        let mut headers: Vec<(String, String)> =
            challenges.iter().map(|challenge| (String::from("www-authenticate"), challenge.render())).collect();
        if let Some(nonce) = &context.nonce {
            headers.push((String::from("dpop-nonce"), nonce.clone()));
        }
        let body = if self.strip_details {
            String::new()
        } else if self.json_body {
            headers.push((String::from("content-type"), String::from("application/json")));
            let mut object = serde_json::Map::new();
            let error_name = code.bearer_error().map_or("unauthorized", |error| error.as_str());
            object.insert(String::from("error"), Value::from(error_name));
            object.insert(String::from("error_description"), Value::from(message.clone()));
            object.insert(String::from("code"), Value::from(code.as_str()));
            Value::Object(object).to_string()
        } else {
            headers.push((String::from("content-type"), String::from("text/plain; charset=utf-8")));
            alloc::format!("{code}: {message}\n")
        };
        Denial { status, code, provider, headers, body, message }
    }
}

fn is_cors_preflight(request: &RequestParts<'_>) -> bool {
    request.method.eq_ignore_ascii_case("OPTIONS")
        && header(request, "origin").is_some()
        && header(request, "access-control-request-method").is_some()
}

fn header<'a>(request: &RequestParts<'a>, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| *value)
}

impl<'r, K: GateState> Evaluator<'_, 'r, K> {
    fn evaluate(&mut self, requirement: &Requirement) -> Evaluation {
        match requirement {
            Requirement::Provider(index) => match self.outcome(*index) {
                Outcome::Missing => Evaluation::Missing(Some(*index)),
                Outcome::Verified(..) => Evaluation::Pass(alloc::vec![*index]),
                Outcome::Failed(error) => Evaluation::Fail(*index, error.clone()),
                Outcome::Pending => Evaluation::Pending(alloc::vec![*index]),
            },
            Requirement::Any(list) => {
                let mut pending = Vec::new();
                let mut failure = None;
                let mut missing = None;
                for item in list {
                    match self.evaluate(item) {
                        Evaluation::Pass(verified) => return Evaluation::Pass(verified),
                        Evaluation::Pending(providers) => pending.extend(providers),
                        Evaluation::Fail(index, error) => {
                            failure.get_or_insert((index, error));
                        }
                        Evaluation::Missing(index) => {
                            missing.get_or_insert(index);
                        }
                    }
                }
                // A token that was present and failed is a more useful report than an absent one.
                if !pending.is_empty() {
                    Evaluation::Pending(pending)
                } else if let Some((index, error)) = failure {
                    Evaluation::Fail(index, error)
                } else {
                    Evaluation::Missing(missing.flatten())
                }
            }
            Requirement::All(list) => {
                let mut verified = Vec::new();
                let mut pending = Vec::new();
                for item in list {
                    match self.evaluate(item) {
                        Evaluation::Pass(providers) => verified.extend(providers),
                        Evaluation::Pending(providers) => pending.extend(providers),
                        failed @ (Evaluation::Fail(..) | Evaluation::Missing(_)) => return failed,
                    }
                }
                if pending.is_empty() { Evaluation::Pass(verified) } else { Evaluation::Pending(pending) }
            }
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => {
                let tolerant = matches!(*requirement, Requirement::AllowMissingOrFailed);
                let mut pending = Vec::new();
                let mut failure = None;
                for index in 0..self.gate.providers.len() {
                    match self.outcome(index) {
                        Outcome::Missing => {}
                        Outcome::Verified(..) => return Evaluation::Pass(alloc::vec![index]),
                        Outcome::Pending => pending.push(index),
                        Outcome::Failed(error) => {
                            failure.get_or_insert((index, error.clone()));
                        }
                    }
                }
                if !pending.is_empty() {
                    Evaluation::Pending(pending)
                } else if let (Some((index, error)), false) = (failure, tolerant) {
                    Evaluation::Fail(index, error)
                } else {
                    Evaluation::Pass(Vec::new())
                }
            }
        }
    }

    fn outcome(&mut self, index: usize) -> &Outcome<'r> {
        if self.slots.get(index).is_some_and(|slot| slot.outcome.is_none()) {
            let outcome = self.verify_provider(index);
            if let Some(slot) = self.slots.get_mut(index) {
                slot.outcome = Some(outcome);
            }
        }
        self.checked(index).unwrap_or(&Outcome::Missing)
    }

    /// Returns a provider's outcome if it was checked.
    fn checked(&self, index: usize) -> Option<&Outcome<'r>> {
        self.slots.get(index).and_then(|slot| slot.outcome.as_ref())
    }

    fn verify_provider(&mut self, index: usize) -> Outcome<'r> {
        let Some(provider) = self.gate.providers.get(index) else { return Outcome::Missing };
        // A token the cache contains passed the `b64token` check when it was stored, so a
        // cache hit skips that scan. The lookup is kept for `verify_cached`.
        let cache = &*self.cache;
        let mut lookup = None;
        let mut known = |token: &'r str| {
            if !cache.is_enabled() || matches!(provider.keys, KeySource::IntrospectionOnly) {
                return false;
            }
            let tail = TokenCache::tail(token);
            let matched = cache.find(index, &tail, token);
            lookup = Some((token, tail, matched));
            matched.is_some()
        };
        let extracted = extract(provider, &self.request, &mut known);
        self.looked_up = lookup;
        let (token, found, scheme) = match extracted {
            Ok(None) => return Outcome::Missing,
            Ok(Some(found)) => found,
            Err(error) => return Outcome::Failed(error),
        };
        if let Some(slot) = self.slots.get_mut(index) {
            slot.dpop_presented = scheme == Scheme::Dpop;
        }
        match self.check_presented(index, provider, &token, scheme) {
            Ok((token, proof)) => Outcome::Verified(Presented { token, found, proof }),
            Err(Stop::Pending) => Outcome::Pending,
            Err(Stop::Failed(error)) => Outcome::Failed(error),
        }
    }

    /// Runs a provider's checks on a token in the order documented at the top of this
    /// module.
    fn check_presented(
        &mut self,
        index: usize,
        provider: &Provider,
        token: &str,
        scheme: Scheme,
    ) -> Result<(Authenticated, Option<VerifiedProof>), Stop> {
        let proof = match (scheme, &provider.dpop) {
            (Scheme::Dpop, Some(settings)) => {
                let nonces = self.accepted_nonces(index)?;
                let nonces: Vec<&str> = nonces.iter().map(String::as_str).collect();
                Some(dpop::check_request_proof(&self.request, settings, token, &nonces, self.now)?)
            }
            // `extract` reads the DPoP scheme only for providers with DPoP settings.
            (Scheme::Dpop, None) => return Err(Stop::Failed(dpop::not_enabled())),
            (Scheme::Bearer, Some(settings)) if settings.mode == DpopMode::Required => {
                return Err(Stop::Failed(dpop::bearer_refused()));
            }
            (Scheme::Bearer, _) => None,
        };
        let authenticated = self.authenticate(index, provider, token)?;
        match &proof {
            Some(proof) => crate::dpop::check_binding(authenticated.claims_map(), proof)?,
            None if crate::dpop::is_bound(authenticated.claims_map()) => {
                return Err(Stop::Failed(dpop::bound_token_as_bearer(provider.dpop.is_some())));
            }
            None => {}
        }
        if provider.revocation_list.is_some() {
            let final_attempt = self.final_attempt;
            match self.keys.revocation_list(index) {
                ListLookup::Ready(list) => list.check(authenticated.claims())?,
                ListLookup::Pending if !final_attempt => return Err(Stop::Pending),
                ListLookup::Pending => {
                    let reason = String::from("timed out waiting for the revocation list");
                    return Err(Stop::Failed(VerifyError::RevocationListUnavailable { reason }));
                }
                ListLookup::Unavailable(reason) => return Err(Stop::Failed(VerifyError::RevocationListUnavailable { reason })),
            }
        }
        Ok((authenticated, proof))
    }

    /// Verifies the token as a JWT unless the provider only introspects, and checks the
    /// introspection response for it when the provider introspects.
    fn authenticate(&mut self, index: usize, provider: &Provider, token: &str) -> Result<Authenticated, Stop> {
        let now = self.now;
        let final_attempt = self.final_attempt;
        // The same slice of the request, not only equal text, so the lookup is the token's.
        let lookup = self
            .looked_up
            .filter(|(looked_up, _, matched)| core::ptr::eq(*looked_up, token) && matched.is_none_or(|matched| matched.provider() == index))
            .map(|(_, tail, matched)| (tail, matched));
        let jwt = match &provider.keys {
            KeySource::IntrospectionOnly => None,
            // Local keys never change while the gate lives: version 0.
            KeySource::Local(set) => Some(verify_cached(self.cache, provider, index, token, lookup, set, 0, now)?),
            KeySource::Remote(_) => {
                let result = match self.keys.lookup(index) {
                    KeyLookup::Ready { keys, version } => verify_cached(self.cache, provider, index, token, lookup, keys, version, now),
                    KeyLookup::Pending if !final_attempt => return Err(Stop::Pending),
                    KeyLookup::Pending => Err(VerifyError::JwksUnavailable {
                        reason: String::from("timed out waiting for the key set"),
                    }),
                    KeyLookup::Unavailable(reason) => Err(VerifyError::JwksUnavailable { reason }),
                };
                if matches!(result, Err(VerifyError::KeyNotFound { .. }))
                    && !final_attempt
                    && self.keys.refetch_for_unknown_kid(index)
                {
                    return Err(Stop::Pending);
                }
                Some(result?)
            }
        };
        let Some(settings) = &provider.introspection else {
            return jwt.map(Authenticated::Jwt).ok_or_else(|| Stop::Failed(VerifyError::JwksUnavailable { reason: String::from("the provider has no keys") }));
        };
        if token.len() > provider.policy.max_token_bytes {
            let error = ParseError::TooLarge { actual: token.len(), max: provider.policy.max_token_bytes };
            return Err(Stop::Failed(VerifyError::Parse(error)));
        }
        let answer = match self.keys.introspect(index, token) {
            IntrospectionLookup::Answer(answer) => answer,
            IntrospectionLookup::Pending if !final_attempt => return Err(Stop::Pending),
            IntrospectionLookup::Pending => {
                let reason = String::from("timed out waiting for the introspection endpoint");
                return Err(Stop::Failed(VerifyError::IntrospectionUnavailable { reason }));
            }
            IntrospectionLookup::Unavailable(reason) => return Err(Stop::Failed(VerifyError::IntrospectionUnavailable { reason })),
        };
        introspection::check_answer(&answer, &provider.policy, settings.mode, now)?;
        Ok(match jwt {
            Some(token) => Authenticated::Jwt(token),
            None => Authenticated::Introspected(answer),
        })
    }

    /// Returns the nonces a provider accepts now: none when its nonces are off.
    fn accepted_nonces(&mut self, index: usize) -> Result<Vec<String>, VerifyError> {
        match self.nonce_issuer(index)? {
            Some(issuer) => Ok(issuer.accepted(self.now).into()),
            None => Ok(Vec::new()),
        }
    }

    fn nonce_issuer(&mut self, index: usize) -> Result<Option<crate::dpop::nonce::NonceIssuer>, VerifyError> {
        let Some(settings) = self.gate.providers.get(index).and_then(|provider| provider.dpop.as_ref()) else { return Ok(None) };
        let Some(lifetime) = settings.nonce_lifetime_seconds else { return Ok(None) };
        let secret = match &settings.nonce_secret {
            Some(secret) => secret.clone(),
            None => self.keys.nonce_secret().ok_or_else(|| VerifyError::DpopProof { reason: String::from("no DPoP nonce secret is available") })?,
        };
        Ok(Some(crate::dpop::nonce::NonceIssuer::new(&secret, lifetime)))
    }

    /// Records the DPoP proofs of `verified` providers in the replay cache. Returns the
    /// providers whose proof was replayed or could not be recorded, with the error.
    fn record_proofs(&mut self, verified: &[usize]) -> Vec<(usize, VerifyError)> {
        let mut failures = Vec::new();
        for &index in verified {
            let checked = self.slots.get(index).and_then(|slot| slot.outcome.as_ref());
            let (Some(provider), Some(Outcome::Verified(presented))) = (self.gate.providers.get(index), checked) else {
                continue;
            };
            let (Some(proof), Some(settings)) = (&presented.proof, &provider.dpop) else { continue };
            let error = match self.keys.record_proof(index, proof, settings.policy.max_age_seconds, self.now) {
                ReplayCheck::Fresh => continue,
                ReplayCheck::Replayed => VerifyError::DpopProof { reason: String::from("the proof was used before (its `jti` was seen)") },
                ReplayCheck::Unavailable(reason) => VerifyError::DpopProof { reason },
            };
            failures.push((index, error));
        }
        failures
    }

    /// Returns how the reported provider's token was presented, and a nonce to send when
    /// the provider issues nonces.
    fn denial_context(&mut self, provider: Option<usize>) -> DenialContext {
        let Some(index) = provider else { return DenialContext::default() };
        let nonce = self.nonce_issuer(index).ok().flatten().map(|issuer| issuer.current(self.now));
        DenialContext { dpop_presented: self.slots.get(index).is_some_and(|slot| slot.dpop_presented), nonce }
    }

    fn apply_outputs(&mut self, verified: &[usize], allowed: &mut Allowed) {
        // The path and the cookies change only when a token is removed from them.
        let mut path: Option<String> = None;
        let mut cookie_header: Option<String> = None;
        for &index in verified {
            let presented_with_proof = matches!(self.checked(index), Some(Outcome::Verified(Presented { proof: Some(_), .. })));
            if presented_with_proof {
                // A fresh nonce with every response keeps clients from needing a retry when
                // the one they hold ages out.
                if let Some(nonce) = self.nonce_issuer(index).ok().flatten().map(|issuer| issuer.current(self.now)) {
                    if !allowed.response_headers.iter().any(|(name, _)| name == "dpop-nonce") {
                        allowed.response_headers.push((String::from("dpop-nonce"), nonce));
                    }
                }
            }
            let (Some(provider), Some(Outcome::Verified(Presented { token, found, proof }))) =
                (self.gate.providers.get(index), self.checked(index))
            else {
                continue;
            };
            for output in &provider.claim_headers {
                if let Some(value) = output.claim.lookup(token.claims_map()).and_then(header_value) {
                    allowed.set_headers.push((output.header.clone(), value));
                }
            }
            if let Some(name) = &provider.payload_header {
                let json = Value::Object(token.claims_map().clone()).to_string();
                allowed.set_headers.push((name.clone(), Base64UrlUnpadded::encode_string(json.as_bytes())));
            }
            if provider.forward {
                continue;
            }
            if proof.is_some() && !allowed.remove_headers.iter().any(|name| name == "dpop") {
                allowed.remove_headers.push(String::from("dpop"));
            }
            match found {
                Found::Header(name) => {
                    if !allowed.remove_headers.iter().any(|removed| removed == name) {
                        allowed.remove_headers.push((*name).to_string());
                    }
                }
                Found::Param(name) => path = Some(remove_query_param(path.as_deref().unwrap_or(self.request.path), name)),
                Found::Cookie(name) => {
                    let current = cookie_header.take().unwrap_or_else(|| cookies_joined(&self.request));
                    cookie_header = Some(remove_cookie(&current, name));
                }
            }
        }
        if let Some(path) = path.filter(|path| path != self.request.path) {
            allowed.set_headers.push((String::from(":path"), path));
        }
        if let Some(cookies) = cookie_header {
            allowed.remove_headers.push(String::from("cookie"));
            if !cookies.is_empty() {
                allowed.set_headers.push((String::from("cookie"), cookies));
            }
        }
    }
}

/// Verifies a token, or takes it from the cache when `keys` (version `key_version`)
/// verified it before. On a hit the policy's time checks run again at `now`.
#[allow(clippy::too_many_arguments)]
fn verify_cached(
    cache: &mut TokenCache,
    provider: &Provider,
    index: usize,
    token: &str,
    lookup: Option<(TokenTail, Option<EntryMatch>)>,
    keys: &KeySet,
    key_version: u64,
    now: u64,
) -> Result<Arc<VerifiedToken>, VerifyError> {
    if !cache.is_enabled() {
        return verify_token(token, keys, &provider.policy, now).map(Arc::new);
    }
    let now_seconds = i64::try_from(now).unwrap_or(i64::MAX);
    let (tail, matched) = lookup.unwrap_or_else(|| {
        let tail = TokenCache::tail(token);
        (tail, cache.find(index, &tail, token))
    });
    if let Some(hit) = cache.get_matched(matched, key_version, now_seconds) {
        claims::check_time(hit.claims(), &provider.policy, now_seconds)?;
        return Ok(hit);
    }
    let verified = Arc::new(verify_token(token, keys, &provider.policy, now)?);
    cache.insert(index, tail, token, key_version, Arc::clone(&verified), claims_bytes(token), now_seconds);
    Ok(verified)
}

/// Size of a token's decoded claims: three bytes per four base64url characters of the
/// second segment.
fn claims_bytes(token: &str) -> usize {
    token.split('.').nth(1).map_or(0, |segment| segment.len() / 4 * 3 + segment.len() % 4)
}

/// Formats a claim for a header: strings as they are, arrays joined with commas, other
/// values as JSON. Control characters become spaces so no value can split a header.
fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(text) => return Some(without_controls(text)),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    Some(without_controls(&text))
}

/// Copies `text` with control characters replaced by spaces.
fn without_controls(text: &str) -> String {
    // Control characters are U+0000 to U+001F, U+007F and U+0080 to U+009F, which UTF-8
    // writes as C2 80 to C2 9F. Text without those bytes is copied as it is.
    if !text.bytes().any(|byte| byte < 0x20 || byte == 0x7f || byte == 0xc2) {
        return String::from(text);
    }
    text.chars().map(|character| if character.is_control() { ' ' } else { character }).collect()
}

/// Finds the provider's token and how it was presented; more than one token is an error.
/// Providers with DPoP settings also read `Authorization: DPoP <token>`.
///
/// `known` returns whether the cache contains a token, which then needs no `b64token` scan.
fn extract<'r>(
    provider: &Provider,
    request: &RequestParts<'r>,
    known: &mut dyn FnMut(&'r str) -> bool,
) -> Result<Option<(Cow<'r, str>, Found<'r>, Scheme)>, VerifyError> {
    let mut found: Option<(Cow<'r, str>, Found<'r>, Scheme)> = None;
    let mut record = |token: Cow<'r, str>, location: Found<'r>, scheme: Scheme| -> Result<(), VerifyError> {
        if found.is_some() {
            return Err(VerifyError::MultipleTokens);
        }
        found = Some((token, location, scheme));
        Ok(())
    };
    for source in &provider.sources.headers {
        let prefix = source.value_prefix.as_deref().unwrap_or("");
        for (name, value) in request.headers.iter().filter(|(name, _)| *name == source.name) {
            match bearer::parse_with_prefix_checked_by(value, prefix, |token| known(token) || bearer::is_b64token(token)) {
                Credential::Absent => {}
                Credential::Token(token) => record(Cow::Borrowed(token), Found::Header(name), Scheme::Bearer)?,
                Credential::Malformed => return Err(VerifyError::MalformedCredential { location: (*name).to_string() }),
            }
        }
    }
    if provider.dpop.is_some() {
        for (name, value) in request.headers.iter().filter(|(name, _)| *name == "authorization") {
            match bearer::parse_authorization_checked_by(value, "DPoP", |token| known(token) || bearer::is_b64token(token)) {
                Credential::Absent => {}
                Credential::Token(token) => record(Cow::Borrowed(token), Found::Header(name), Scheme::Dpop)?,
                Credential::Malformed => return Err(VerifyError::MalformedCredential { location: (*name).to_string() }),
            }
        }
    }
    if !provider.sources.params.is_empty() {
        if let Some((_, query)) = request.path.split_once('?') {
            for pair in query.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if provider.sources.params.iter().any(|wanted| wanted == name) {
                    let token = percent_decode(value)
                        .filter(|token| bearer::is_b64token(token))
                        .ok_or_else(|| VerifyError::MalformedCredential { location: name.to_string() })?;
                    record(Cow::Owned(token), Found::Param(name), Scheme::Bearer)?;
                }
            }
        }
    }
    if !provider.sources.cookies.is_empty() {
        for (_, value) in request.headers.iter().filter(|(name, _)| *name == "cookie") {
            for pair in value.split(';') {
                let (name, token) = pair.trim().split_once('=').unwrap_or((pair.trim(), ""));
                if provider.sources.cookies.iter().any(|wanted| wanted == name) {
                    let token = token.trim_matches('"');
                    if !bearer::is_b64token(token) {
                        return Err(VerifyError::MalformedCredential { location: name.to_string() });
                    }
                    record(Cow::Borrowed(token), Found::Cookie(name), Scheme::Bearer)?;
                }
            }
        }
    }
    Ok(found)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = bytes.get(index + 1).and_then(|digit| char::from(*digit).to_digit(16))?;
            let low = bytes.get(index + 2).and_then(|digit| char::from(*digit).to_digit(16))?;
            out.push(u8::try_from(high * 16 + low).ok()?);
            index += 3;
        } else {
            out.push(if byte == b'+' { b' ' } else { byte });
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn remove_query_param(path: &str, name: &str) -> String {
    let Some((base, query)) = path.split_once('?') else { return path.to_string() };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').map_or(*pair, |(key, _)| key) != name)
        .collect();
    if kept.is_empty() { base.to_string() } else { alloc::format!("{base}?{}", kept.join("&")) }
}

fn cookies_joined(request: &RequestParts<'_>) -> String {
    request
        .headers
        .iter()
        .filter(|(name, _)| *name == "cookie")
        .map(|(_, value)| *value)
        .collect::<Vec<_>>()
        .join("; ")
}

fn remove_cookie(cookies: &str, name: &str) -> String {
    cookies
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').map_or(*pair, |(key, _)| key) != name)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    /// Returns the private key of the test key set, made from fixed bytes.
    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn eddsa(claims: &str) -> String {
        let input = alloc::format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(br#"{"alg":"EdDSA"}"#),
            Base64UrlUnpadded::encode_string(claims.as_bytes())
        );
        let signature = signing_key().sign(input.as_bytes());
        alloc::format!("{input}.{}", Base64UrlUnpadded::encode_string(&signature.to_bytes()))
    }

    /// Builds a gate with one remote provider `idp` whose keys come from [`TestKeys`].
    fn remote_gate() -> Gate {
        Gate::from_json(br#"{"providers":{"idp":{"algorithms":["EdDSA"],
            "remote_jwks":{"http_uri":{"uri":"https://idp.example/jwks","cluster":"idp"}}}}}"#)
        .unwrap()
    }

    /// Keys for the test gate: the public key of [`signing_key`], or none yet.
    struct TestKeys {
        keys: Option<KeySet>,
        version: u64,
    }

    impl GateState for TestKeys {
        fn lookup(&mut self, _index: usize) -> KeyLookup<'_> {
            match &self.keys {
                Some(keys) => KeyLookup::Ready { keys, version: self.version },
                None => KeyLookup::Pending,
            }
        }

        fn refetch_for_unknown_kid(&mut self, _index: usize) -> bool {
            false
        }
    }

    fn public_set() -> KeySet {
        let x = Base64UrlUnpadded::encode_string(signing_key().verifying_key().as_bytes());
        let jwks = alloc::format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}]}}"#);
        KeySet::from_json(jwks.as_bytes(), crate::jwks::KeySetOptions::default()).unwrap()
    }

    fn bearer(token: &str) -> String {
        alloc::format!("Bearer {token}")
    }

    fn parts<'a>(headers: &'a [(&'a str, &'a str)]) -> RequestParts<'a> {
        RequestParts { method: "GET", path: "/a", scheme: "https", authority: "api.example", headers }
    }

    #[test]
    fn final_attempt_never_pending() {
        let gate = remote_gate();
        let authorization = bearer(&eddsa(r#"{"exp":2000}"#));
        let headers = [("authorization", authorization.as_str())];
        let mut keys = TestKeys { keys: None, version: 0 };
        assert!(matches!(gate.decide(parts(&headers), &mut keys, 1000, false), Decision::Pending { .. }));
        match gate.decide(parts(&headers), &mut keys, 1000, true) {
            Decision::Deny(denial) => {
                assert_eq!(denial.code, ErrorCode::JwksUnavailable);
                assert_eq!(denial.status, 401);
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn cache_hit_rechecks_time_and_key_version() {
        let gate = remote_gate();
        let authorization = bearer(&eddsa(r#"{"exp":2000}"#));
        let headers = [("authorization", authorization.as_str())];
        let mut keys = TestKeys { keys: Some(public_set()), version: 1 };
        let mut cache = TokenCache::new(gate.cache_limits);
        assert!(matches!(gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 1000, false), Decision::Allow(_)));
        assert!(matches!(gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 1001, false), Decision::Allow(_)));
        assert_eq!(cache.take_stats(), cache::CacheStats { hits: 1, misses: 1 });

        // Another key-set version verifies again.
        keys.version = 2;
        assert!(matches!(gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 1002, false), Decision::Allow(_)));
        assert_eq!(cache.take_stats(), cache::CacheStats { hits: 0, misses: 1 });

        // Past `exp` plus the 60 s leeway the entry is gone and the token fails in full.
        match gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 2060, false) {
            Decision::Deny(denial) => assert_eq!(denial.code, ErrorCode::TokenExpired),
            other => panic!("expected a denial, got {other:?}"),
        }
        assert_eq!(cache.take_stats(), cache::CacheStats { hits: 0, misses: 1 });
        assert!(cache.is_empty());
    }

    #[test]
    fn outputs_removed_on_every_decision() {
        let gate = Gate::from_json(br#"{"providers":{"idp":{"algorithms":["HS256"],
            "local_jwks":{"inline":{"keys":[{"kty":"oct","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}},
            "claim_to_headers":[{"header_name":"X-Sub","claim_name":"sub"}]}},
            "rules":[{"match":{"prefix":"/a"}}],"bypass_cors_preflight":true}"#)
        .unwrap();
        let headers = [("x-sub", "spoofed")];
        let Decision::Allow(allowed) = gate.decide(parts(&headers), &mut NoRemoteKeys, 1000, false) else {
            panic!("expected the unprotected path to pass");
        };
        assert_eq!(allowed.remove_headers, [String::from("x-sub")]);
        assert!(!allowed.cors_preflight);
    }

    #[test]
    fn query_param_removed() {
        assert_eq!(remove_query_param("/a?access_token=x&b=1", "access_token"), "/a?b=1");
        assert_eq!(remove_query_param("/a?access_token=x", "access_token"), "/a");
        assert_eq!(remove_query_param("/a", "access_token"), "/a");
    }

    #[test]
    fn cookie_removed() {
        assert_eq!(remove_cookie("a=1; token=x; b=2", "token"), "a=1; b=2");
        assert_eq!(remove_cookie("token=x", "token"), "");
    }

    #[test]
    fn header_values_flattened() {
        assert_eq!(header_value(&serde_json::json!(["a", "b", 3])), Some(String::from("a,b,3")));
        assert_eq!(header_value(&serde_json::json!({"k": 1})), Some(String::from("{\"k\":1}")));
        assert_eq!(header_value(&serde_json::json!("line\r\nbreak")), Some(String::from("line  break")));
        assert_eq!(header_value(&Value::Null), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Eb"), Some(String::from("a.b")));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    /// Signs an HS256 token with `secret`.
    fn hs256(secret: &[u8], claims: &str) -> String {
        use hmac::{Hmac, Mac};
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"HS256"}"#);
        let input = alloc::format!("{header}.{}", Base64UrlUnpadded::encode_string(claims.as_bytes()));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        alloc::format!("{input}.{}", Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes()))
    }

    const SECRET_A: &[u8] = b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const SECRET_B: &[u8] = b"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    /// Two HS256 providers with different keys that read the same places, and a rule for
    /// each, for either and for both.
    fn two_provider_gate() -> Gate {
        let key_a = Base64UrlUnpadded::encode_string(SECRET_A);
        let key_b = Base64UrlUnpadded::encode_string(SECRET_B);
        let provider = |key: &str| {
            alloc::format!(
                r#"{{"algorithms":["HS256"],"local_jwks":{{"inline":{{"keys":[{{"kty":"oct","k":"{key}"}}]}}}},"from_params":["t"],"from_cookies":["c"],"from_headers":[{{"name":"authorization","value_prefix":"Bearer "}}]}}"#
            )
        };
        let json = alloc::format!(
            r#"{{"providers":{{"a":{},"b":{}}},"rules":[
                {{"match":{{"prefix":"/a"}},"requires":{{"provider_name":"a"}}}},
                {{"match":{{"prefix":"/b"}},"requires":{{"provider_name":"b"}}}},
                {{"match":{{"prefix":"/either"}},"requires":{{"requires_any":{{"requirements":[{{"provider_name":"b"}},{{"provider_name":"a"}}]}}}}}},
                {{"match":{{"prefix":"/both"}},"requires":{{"requires_all":{{"requirements":[{{"provider_name":"a"}},{{"provider_name":"b"}}]}}}}}}]}}"#,
            provider(&key_a),
            provider(&key_b)
        );
        Gate::from_json(json.as_bytes()).unwrap()
    }

    fn allowed_at(gate: &Gate, cache: &mut TokenCache, path: &str, headers: &[(&str, &str)], now: u64) -> bool {
        let request = RequestParts { method: "GET", path, scheme: "https", authority: "api.example", headers };
        matches!(gate.decide_with_cache(request, &mut NoRemoteKeys, cache, now, true), Decision::Allow(_))
    }

    #[test]
    fn cached_token_stays_with_its_provider() {
        let gate = two_provider_gate();
        let mut cache = TokenCache::new(gate.cache_limits);
        let token = hs256(SECRET_A, r#"{"sub":"user","exp":5000}"#);
        let authorization = bearer(&token);
        let headers = [("authorization", authorization.as_str())];
        // The first round verifies and stores; the next ones hit.
        for _ in 0..3 {
            assert!(allowed_at(&gate, &mut cache, "/a", &headers, 1000));
            assert!(!allowed_at(&gate, &mut cache, "/b", &headers, 1000), "b's key did not sign it");
            assert!(allowed_at(&gate, &mut cache, "/either", &headers, 1000));
            assert!(!allowed_at(&gate, &mut cache, "/both", &headers, 1000));
        }
        assert!(cache.take_stats().hits >= 4);
        assert!(!allowed_at(&gate, &mut cache, "/a", &headers, 6000), "expired");
    }

    #[test]
    fn forgeries_sharing_the_tail_are_rejected() {
        let gate = two_provider_gate();
        let mut cache = TokenCache::new(gate.cache_limits);
        let token = hs256(SECRET_A, r#"{"sub":"user","exp":5000}"#);
        let authorization = bearer(&token);
        let headers = [("authorization", authorization.as_str())];
        assert!(allowed_at(&gate, &mut cache, "/a", &headers, 1000));

        let payload_at = token.find('.').unwrap();
        let signature_at = token.rfind('.').unwrap();
        let admin_claims = Base64UrlUnpadded::encode_string(br#"{"sub":"admin","exp":5000}"#);
        let none_header = Base64UrlUnpadded::encode_string(br#"{"alg":"none"}"#);
        let forgeries = [
            alloc::format!("{}.{admin_claims}{}", &token[..payload_at], &token[signature_at..]),
            alloc::format!("x{token}"),
            alloc::format!("{}{}", &token[..token.len() - 17], &token[token.len() - 16..]),
            String::from(&token[token.len() - 16..]),
            alloc::format!("{none_header}.{}", &token[payload_at + 1..]),
        ];
        for forged in &forgeries {
            assert_eq!(TokenCache::tail(forged), TokenCache::tail(&token));
            let forged_authorization = bearer(forged);
            let forged_headers = [("authorization", forged_authorization.as_str())];
            for path in ["/a", "/b", "/either", "/both"] {
                assert!(!allowed_at(&gate, &mut cache, path, &forged_headers, 1000), "{path} {forged}");
            }
            let in_query = alloc::format!("/a?t={forged}");
            assert!(!allowed_at(&gate, &mut cache, &in_query, &[], 1000), "query {forged}");
            let cookie = alloc::format!("c={forged}");
            assert!(!allowed_at(&gate, &mut cache, "/a", &[("cookie", cookie.as_str())], 1000), "cookie {forged}");
        }
        cache.take_stats();
        assert!(allowed_at(&gate, &mut cache, "/a", &headers, 1000));
        assert_eq!(cache.take_stats().hits, 1, "the forgeries left the cached entry in place");
    }

}
