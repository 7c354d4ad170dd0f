// The OAuth client entry point `portcullis/client`: DPoP keys and proofs (RFC 9449), token
// revocation (RFC 7009) and token refresh (RFC 6749 §6). Keys, signatures and hashes come
// from WebCrypto. Refresh timing reads `exp` with `inspectToken` of the small entry point in
// the same build directory, so an app that imports both loads the light WebAssembly module
// once. Types and docs: client.d.ts.

import { inspectToken } from './index.js';

/** A request to an authorization server failed. See client.d.ts for the codes. */
export class OAuthRequestError extends Error {
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'OAuthRequestError';
    this.code = code;
    this.status = details.status;
    if (details.error !== undefined) {
      this.error = details.error;
      this.errorDescription = details.errorDescription;
      this.errorUri = details.errorUri;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Encoding

const encoder = new TextEncoder();

function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function encodeJson(value) {
  return base64url(encoder.encode(JSON.stringify(value)));
}

async function sha256(text) {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text))));
}

function requireString(value, name) {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${name} must be a non-empty string`);
  }
}

function optionalString(value, name) {
  if (value !== undefined) {
    requireString(value, name);
  }
}

/** Parses a string or `URL` as an absolute URL; `null` when it is not one. */
function parseUrl(value) {
  try {
    return new URL(value instanceof URL ? value.href : value);
  } catch {
    return null;
  }
}

function optionalSeconds(value, name) {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
    throw new TypeError(`${name} must be a finite number of seconds, at least 0`);
  }
}

// ---------------------------------------------------------------------------------------
// DPoP keys and proofs (RFC 9449)

// Per `alg`: WebCrypto parameters, and the public JWK members in the lexicographic order
// that the RFC 7638 thumbprint input requires.
const DPOP_ALGORITHMS = {
  ES256: { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' }, members: ['crv', 'kty', 'x', 'y'] },
  EdDSA: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' }, members: ['crv', 'kty', 'x'] },
};

function dpopAlgorithm(alg) {
  if (!Object.hasOwn(DPOP_ALGORITHMS, alg)) {
    throw new TypeError(`alg must be "ES256" or "EdDSA", not ${JSON.stringify(alg)}`);
  }
  return DPOP_ALGORITHMS[alg];
}

/** Copies only the public members that `alg` defines, so no private member can leak. */
function publicMembers(jwk, members) {
  const copy = {};
  for (const member of members) {
    requireString(jwk?.[member], `publicJwk.${member}`);
    copy[member] = jwk[member];
  }
  return copy;
}

export async function createDpopKey(options) {
  const alg = options?.alg ?? 'ES256';
  const algorithm = dpopAlgorithm(alg);
  // WebCrypto always makes the public key of a pair extractable; `false` applies to the
  // private key.
  const { privateKey, publicKey } = await crypto.subtle.generateKey(algorithm.generate, false, ['sign', 'verify']);
  const publicJwk = publicMembers(await crypto.subtle.exportKey('jwk', publicKey), algorithm.members);
  // RFC 7638 §3: the required members in lexicographic order, no whitespace. The values are
  // base64url and curve names, which JSON.stringify writes without escapes.
  const jkt = await sha256(JSON.stringify(publicJwk));
  return Object.freeze({ alg, privateKey, publicKey, publicJwk: Object.freeze(publicJwk), jkt });
}

// An HTTP method is a `token` (RFC 9110 §9.1, §5.6.2).
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Returns `htu`: the absolute http(s) URL without query and fragment (RFC 9449 §4.2). */
function targetUri(url) {
  const parsed = parseUrl(url);
  if (parsed === null || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new TypeError(`url must be an absolute http or https URL, not ${JSON.stringify(String(url))}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new TypeError('url must not contain a user name or password');
  }
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

export async function createDpopProof(options) {
  const { key, method, url, accessToken, nonce, now } = options ?? {};
  const algorithm = dpopAlgorithm(key?.alg);
  if (key.privateKey?.type !== 'private') {
    throw new TypeError('key.privateKey must be a private CryptoKey; create the key with createDpopKey');
  }
  if (typeof method !== 'string' || !METHOD.test(method)) {
    throw new TypeError(`method must be an HTTP method such as "POST", not ${JSON.stringify(method)}`);
  }
  optionalString(accessToken, 'accessToken');
  optionalString(nonce, 'nonce');
  optionalSeconds(now, 'now');

  const header = { typ: 'dpop+jwt', alg: key.alg, jwk: publicMembers(key.publicJwk, algorithm.members) };
  const claims = {
    // 128 random bits, so that two proofs share a `jti` with negligible probability.
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: method,
    htu: targetUri(url),
    iat: Math.floor(now ?? Date.now() / 1000),
  };
  if (accessToken !== undefined) {
    claims.ath = await sha256(accessToken);
  }
  if (nonce !== undefined) {
    claims.nonce = nonce;
  }
  const input = `${encodeJson(header)}.${encodeJson(claims)}`;
  // WebCrypto's ECDSA signature is already R || S (IEEE P1363), the JWS form (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(algorithm.sign, key.privateKey, encoder.encode(input));
  return `${input}.${base64url(new Uint8Array(signature))}`;
}

// ---------------------------------------------------------------------------------------
// Requests to the authorization server

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Reads an endpoint URL: https, or http on a loopback host only. */
function endpointUrl(value, name) {
  const url = parseUrl(value);
  const secure = url?.protocol === 'https:' || (url?.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
  if (!secure || url.hash !== '') {
    throw new TypeError(`${name} must be an https URL without a fragment (http only on localhost, 127.0.0.1 or [::1])`);
  }
  return url.href;
}

/** Encodes one value as `application/x-www-form-urlencoded`, as RFC 6749 §2.3.1 requires for Basic. */
function formEncode(value) {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/**
 * Headers of a form POST with client authentication: HTTP Basic (`client_secret_basic`)
 * with a secret, otherwise `client_id` in the body (public clients).
 */
function formHeaders(body, clientId, clientSecret) {
  const headers = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
  if (clientSecret === undefined) {
    body.set('client_id', clientId);
  } else {
    headers.authorization = `Basic ${btoa(`${formEncode(clientId)}:${formEncode(clientSecret)}`)}`;
  }
  return headers;
}

async function send(fetchOption, url, init) {
  // Called as a plain function: browsers reject `window.fetch` called on another object.
  const request = fetchOption ?? globalThis.fetch;
  if (typeof request !== 'function') {
    throw new TypeError('fetch must be a function');
  }
  try {
    // Credentials in the body must not follow a redirect to another URL.
    return await request(url, { ...init, redirect: 'error' });
  } catch (cause) {
    throw new OAuthRequestError('request_failed', `the request to ${url} failed: ${cause?.message ?? cause}`, { cause });
  }
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Builds the error for a response other than the expected 200. */
async function responseError(response, url) {
  const payload = await readJson(response);
  const { status } = response;
  if (!isObject(payload) || typeof payload.error !== 'string' || payload.error === '') {
    return new OAuthRequestError('response_invalid', `${url} returned HTTP ${status} without an OAuth error response`, { status });
  }
  const text = (value) => (typeof value === 'string' ? value : undefined);
  const errorDescription = text(payload.error_description);
  const description = errorDescription === undefined ? '' : `: ${errorDescription}`;
  return new OAuthRequestError('error_response', `${url} returned HTTP ${status} with error ${payload.error}${description}`, {
    status,
    error: payload.error,
    errorDescription,
    errorUri: text(payload.error_uri),
  });
}

export async function revokeToken(options) {
  const { revocationEndpoint, token, tokenTypeHint, clientId, clientSecret, fetch } = options ?? {};
  const url = endpointUrl(revocationEndpoint, 'revocationEndpoint');
  requireString(token, 'token');
  optionalString(tokenTypeHint, 'tokenTypeHint');
  requireString(clientId, 'clientId');
  optionalString(clientSecret, 'clientSecret');

  const body = new URLSearchParams({ token });
  if (tokenTypeHint !== undefined) {
    body.set('token_type_hint', tokenTypeHint);
  }
  const response = await send(fetch, url, { method: 'POST', headers: formHeaders(body, clientId, clientSecret), body });
  // RFC 7009 §2.2: 200 whether the token was revoked or was already invalid or unknown.
  if (response.status !== 200) {
    throw await responseError(response, url);
  }
  await response.body?.cancel();
}

// ---------------------------------------------------------------------------------------
// Token refresh

/** Refresh requests in flight, by endpoint, client and refresh token. */
const refreshes = new Map();

export function refreshIfNeeded(options) {
  try {
    const { tokenEndpoint, clientId, clientSecret, refreshToken, accessToken, expiresAt, minValidity, dpop, fetch, now } = options ?? {};
    const url = endpointUrl(tokenEndpoint, 'tokenEndpoint');
    requireString(clientId, 'clientId');
    optionalString(clientSecret, 'clientSecret');
    requireString(refreshToken, 'refreshToken');
    requireString(accessToken, 'accessToken');
    if (expiresAt !== null) {
      optionalSeconds(expiresAt, 'expiresAt');
    }
    if (minValidity === undefined) {
      throw new TypeError('minValidity must be a number of seconds');
    }
    optionalSeconds(minValidity, 'minValidity');
    optionalSeconds(now, 'now');
    if (dpop !== undefined) {
      if (!isObject(dpop) || dpop.key?.privateKey?.type !== 'private') {
        throw new TypeError('dpop.key must be a key from createDpopKey');
      }
      dpopAlgorithm(dpop.key.alg);
      optionalString(dpop.nonce, 'dpop.nonce');
    }

    // `inspectToken` reads `exp` by the core's NumericDate rules (fractions rounded down).
    // The comparison is the one `isExpired` makes, with `now` and `minValidity` rounded down.
    const expiry = typeof expiresAt === 'number' ? expiresAt : inspectToken(accessToken).expiresAt;
    const stale = expiry !== null && expiry <= Math.floor(now ?? Date.now() / 1000) + Math.floor(minValidity);
    if (!stale) {
      return Promise.resolve(Object.freeze({ refreshed: false, accessToken, refreshToken, expiresAt: expiry }));
    }

    // The lookup and the insert run in one synchronous step, so every call made while the
    // request is in flight, in the same tick or later, finds the entry.
    const key = JSON.stringify([url, clientId, refreshToken]);
    let pending = refreshes.get(key);
    if (pending === undefined) {
      pending = requestRefresh({ url, clientId, clientSecret, refreshToken, dpop, fetch, now }).finally(() => {
        refreshes.delete(key);
      });
      refreshes.set(key, pending);
    }
    return pending;
  } catch (error) {
    return Promise.reject(error);
  }
}

async function requestRefresh({ url, clientId, clientSecret, refreshToken, dpop, fetch, now }) {
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken });
  const headers = formHeaders(body, clientId, clientSecret);
  const requestedAt = Math.floor(now ?? Date.now() / 1000);
  let nonce = dpop?.nonce;

  // At most two requests: the second only when the server requires a new DPoP nonce.
  for (let attempt = 1; ; attempt += 1) {
    if (dpop !== undefined) {
      headers.dpop = await createDpopProof({ key: dpop.key, method: 'POST', url, nonce });
    }
    const response = await send(fetch, url, { method: 'POST', headers, body });
    const serverNonce = response.headers.get('dpop-nonce') ?? undefined;
    if (response.status === 200) {
      return tokensFromResponse(await readJson(response), url, { refreshToken, requestedAt, nonce: serverNonce ?? nonce });
    }
    const error = await responseError(response, url);
    // RFC 9449 §8: `use_dpop_nonce` with a `DPoP-Nonce` header requires a proof with that nonce.
    const retry = dpop !== undefined && attempt === 1 && error.error === 'use_dpop_nonce' && serverNonce !== undefined && serverNonce !== nonce;
    if (!retry) {
      throw error;
    }
    nonce = serverNonce;
  }
}

/** Checks a successful token response (RFC 6749 §5.1) and builds the result. */
function tokensFromResponse(payload, url, { refreshToken, requestedAt, nonce }) {
  const invalid = (problem) => new OAuthRequestError('response_invalid', `the token response of ${url} ${problem}`, { status: 200 });
  if (!isObject(payload)) {
    throw invalid('is not a JSON object');
  }
  const { access_token: accessToken, token_type: tokenType, refresh_token: newRefreshToken, expires_in: expiresIn, scope, id_token: idToken } = payload;
  for (const [name, value, required] of [
    ['access_token', accessToken, true],
    ['token_type', tokenType, true],
    ['refresh_token', newRefreshToken, false],
    ['scope', scope, false],
    ['id_token', idToken, false],
  ]) {
    if ((required || value !== undefined) && (typeof value !== 'string' || value === '')) {
      throw invalid(`has no valid ${name}: expected a non-empty string`);
    }
  }
  if (expiresIn !== undefined && (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn < 0)) {
    throw invalid('has an expires_in that is not a number of seconds');
  }

  const result = {
    refreshed: true,
    accessToken,
    tokenType,
    // Without a new refresh token the server did not rotate it, and the old one stays valid.
    refreshToken: newRefreshToken ?? refreshToken,
    expiresAt: expiresIn === undefined ? null : requestedAt + Math.floor(expiresIn),
    response: payload,
  };
  if (scope !== undefined) {
    result.scope = scope;
  }
  if (idToken !== undefined) {
    result.idToken = idToken;
  }
  if (nonce !== undefined) {
    result.dpopNonce = nonce;
  }
  return Object.freeze(result);
}
