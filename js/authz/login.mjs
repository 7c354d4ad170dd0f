/**
 * Scripted end-user login: drives the authorization code flow with PKCE against the test
 * authorization server over plain HTTP, the way a browser would, and returns the tokens.
 *
 * Every request uses `redirect: 'manual'`. A small cookie jar carries oidc-provider's session and
 * interaction cookies between requests. The login and consent pages are recognised by the form
 * ids `login-form` and `consent-form` that `interactions.mjs` renders, so this client only works
 * with that server, not with arbitrary authorization servers.
 */

import { randomBytes } from 'node:crypto';

// Redirects and form submissions in one flow. A normal run needs about six.
const MAX_HOPS = 20;

// Maximum length of a plain-text error body quoted in an error message.
const MAX_QUOTED_BODY = 200;

/**
 * Failure of one step of the scripted login. The message names the step and the HTTP status and
 * never contains tokens, codes or passwords.
 */
export class LoginError extends Error {
  /**
   * @param {'discovery' | 'authorization' | 'login' | 'consent' | 'callback' | 'token'} step
   * @param {string} message
   * @param {{ status?: number, error?: string }} [details] HTTP status and OAuth `error` code
   */
  constructor(step, message, { status, error } = {}) {
    super(`login step "${step}" failed: ${message}`);
    this.name = 'LoginError';
    this.step = step;
    this.status = status;
    this.error = error;
  }
}

/**
 * Runs the whole authorization code flow and returns the parsed token endpoint response
 * (`access_token`, `token_type`, `expires_in`, `scope`, and `refresh_token` when the server
 * issues one).
 *
 * Steps: discovery, authorization request with PKCE S256 and `resource`, login form, consent
 * form, callback checks (`state`, and the RFC 9207 `iss` parameter), then the token request
 * with `code_verifier` and `resource`.
 *
 * It does NOT check the returned access token itself; verify it with the JWKS.
 *
 * @param {object} options
 * @param {string} options.issuer expected issuer identifier, compared with discovery and `iss`
 * @param {string} options.clientId
 * @param {string} options.redirectUri must be registered for the client; it is never requested
 * @param {string} [options.scope] e.g. `api:read offline_access`
 * @param {string | string[]} [options.resource] RFC 8707 resource indicator(s)
 * @param {string} options.codeVerifier PKCE verifier sent to the token endpoint
 * @param {string} options.codeChallenge S256 challenge of `codeVerifier`
 * @param {string} options.username
 * @param {string} options.password
 * @param {string} [options.state] default: 16 random bytes, base64url
 * @param {string} [options.discoveryUrl] default: `<issuer>/.well-known/openid-configuration`
 * @param {string} [options.clientSecret] for client_secret_basic clients; public clients omit it
 * @param {typeof fetch} [options.fetch] default: the global `fetch`
 * @returns {Promise<Record<string, unknown>>}
 * @throws {LoginError} when any step fails
 */
export async function login(options) {
  // Checked here as well as in exchangeAuthorizationCode, so a missing verifier fails before
  // the browser part runs.
  requireStrings({ codeVerifier: options.codeVerifier });
  const { code, metadata } = await authorize(options);

  return exchangeAuthorizationCode({
    metadata,
    code,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    redirectUri: options.redirectUri,
    codeVerifier: options.codeVerifier,
    resource: options.resource,
    fetch: options.fetch,
  });
}

/**
 * Runs the browser part of the flow (discovery to callback) and returns the authorization code
 * without redeeming it, together with the discovered metadata.
 *
 * Takes the same options as `login`. It does not use `clientSecret`.
 *
 * @returns {Promise<{ code: string, metadata: Record<string, unknown> }>}
 * @throws {LoginError}
 */
export async function authorize(options) {
  const {
    issuer,
    clientId,
    redirectUri,
    scope,
    resource,
    codeChallenge,
    username,
    password,
    state = randomBytes(16).toString('base64url'),
    discoveryUrl = `${issuer?.replace(/\/$/, '')}/.well-known/openid-configuration`,
    fetch = globalThis.fetch,
  } = options;

  requireStrings({ issuer, clientId, redirectUri, codeChallenge, username, password, state });

  const metadata = await discover({ issuer, discoveryUrl, fetch });
  const browser = new Browser(fetch);

  const authorizationUrl = new URL(metadata.authorization_endpoint);
  const query = authorizationUrl.searchParams;
  query.set('response_type', 'code');
  query.set('client_id', clientId);
  query.set('redirect_uri', redirectUri);
  if (scope !== undefined) {
    query.set('scope', scope);
  }
  query.set('state', state);
  query.set('code_challenge', codeChallenge);
  query.set('code_challenge_method', 'S256');
  for (const value of toList(resource)) {
    query.append('resource', value);
  }

  const callbackUrl = await browser.run({
    step: 'authorization',
    url: authorizationUrl,
    redirectUri,
    credentials: { username, password },
  });

  const code = readCallback(callbackUrl, { metadata, state });
  return { code, metadata };
}

/**
 * Redeems an authorization code at the token endpoint and returns the parsed JSON response.
 *
 * @param {object} options
 * @param {Record<string, unknown>} options.metadata discovered metadata (from `authorize`)
 * @param {string} options.code
 * @param {string} options.clientId
 * @param {string} [options.clientSecret] sent with HTTP Basic (client_secret_basic) when given
 * @param {string} options.redirectUri
 * @param {string} options.codeVerifier
 * @param {string | string[]} [options.resource]
 * @param {typeof fetch} [options.fetch]
 * @throws {LoginError} with `step` "token", the HTTP `status` and the OAuth `error` code
 */
export async function exchangeAuthorizationCode({
  metadata,
  code,
  clientId,
  clientSecret,
  redirectUri,
  codeVerifier,
  resource,
  fetch = globalThis.fetch,
}) {
  requireStrings({ code, clientId, redirectUri, codeVerifier });

  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: codeVerifier,
  });
  for (const value of toList(resource)) {
    body.append('resource', value);
  }

  const headers = {
    accept: 'application/json',
    'content-type': 'application/x-www-form-urlencoded',
  };
  if (clientSecret === undefined) {
    body.set('client_id', clientId);
  } else {
    headers.authorization = basicAuthorization(clientId, clientSecret);
  }

  const response = await send('token', fetch, metadata.token_endpoint, {
    method: 'POST',
    headers,
    body,
  });
  const payload = await readJson('token', response);

  if (!response.ok) {
    throw new LoginError('token', `${describeResponse(response)}: ${describeOAuthError(payload)}`, {
      status: response.status,
      error: payload?.error,
    });
  }
  if (typeof payload?.access_token !== 'string' || typeof payload?.token_type !== 'string') {
    throw new LoginError('token', 'the token response has no access_token or token_type', {
      status: response.status,
    });
  }
  return payload;
}

async function discover({ issuer, discoveryUrl, fetch }) {
  const response = await send('discovery', fetch, discoveryUrl, {
    headers: { accept: 'application/json' },
  });
  const metadata = await readJson('discovery', response);

  if (!response.ok) {
    throw new LoginError('discovery', describeResponse(response), { status: response.status });
  }
  if (metadata?.issuer !== issuer) {
    throw new LoginError(
      'discovery',
      `the metadata issuer ${JSON.stringify(metadata?.issuer)} does not match the expected issuer ${JSON.stringify(issuer)}`,
    );
  }
  for (const field of ['authorization_endpoint', 'token_endpoint']) {
    if (typeof metadata[field] !== 'string') {
      throw new LoginError('discovery', `the metadata has no ${field}`);
    }
  }
  return metadata;
}

/**
 * Checks the redirect to the client (RFC 9207 `iss`, `state`, `error`) and returns the code.
 */
function readCallback(callbackUrl, { metadata, state }) {
  const params = callbackUrl.searchParams;

  const iss = params.get('iss');
  if (iss === null && metadata.authorization_response_iss_parameter_supported === true) {
    throw new LoginError('callback', 'the authorization response has no iss parameter (RFC 9207)');
  }
  if (iss !== null && iss !== metadata.issuer) {
    throw new LoginError(
      'callback',
      `the authorization response iss ${JSON.stringify(iss)} does not match the issuer ${JSON.stringify(metadata.issuer)}`,
    );
  }
  if (params.get('state') !== state) {
    throw new LoginError('callback', 'the authorization response state does not match the request state');
  }

  const error = params.get('error');
  if (error !== null) {
    throw new LoginError(
      'callback',
      `the authorization server returned an error: ${describeOAuthError({
        error,
        error_description: params.get('error_description') ?? undefined,
      })}`,
      { error },
    );
  }

  const code = params.get('code');
  if (code === null || code === '') {
    throw new LoginError('callback', 'the authorization response has no code');
  }
  return code;
}

/**
 * Follows redirects and submits the login and consent forms until the user agent is sent to the
 * client's redirect URI.
 */
class Browser {
  #fetch;
  #cookies = new CookieJar();

  constructor(fetch) {
    this.#fetch = fetch;
  }

  /**
   * @returns {Promise<URL>} the URL the server redirected to, starting with `redirectUri`
   */
  async run({ step: firstStep, url: firstUrl, redirectUri, credentials }) {
    let step = firstStep;
    let url = firstUrl;
    let response = await this.#request(step, url, { method: 'GET' });

    for (let hop = 0; hop < MAX_HOPS; hop += 1) {
      if (isRedirect(response.status)) {
        await response.body?.cancel();
        const location = response.headers.get('location');
        if (location === null) {
          throw new LoginError(step, `${describeResponse(response)} has no Location header`, {
            status: response.status,
          });
        }
        url = new URL(location, url);
        if (isRedirectUri(url, redirectUri)) {
          return url;
        }
        response = await this.#request(step, url, { method: 'GET' });
        continue;
      }

      const contentType = response.headers.get('content-type') ?? '';
      if (response.status !== 200 || !contentType.startsWith('text/html')) {
        throw new LoginError(step, await describeFailure(response), { status: response.status });
      }

      const html = await response.text();
      const loginForm = findForm(html, 'login-form', url);
      const consentForm = findForm(html, 'consent-form', url);

      if (loginForm !== undefined) {
        step = 'login';
        const fields = new URLSearchParams(loginForm.hiddenFields);
        fields.set('username', credentials.username);
        fields.set('password', credentials.password);
        url = loginForm.action;
        response = await this.#submit(step, url, fields);
      } else if (consentForm !== undefined) {
        step = 'consent';
        url = consentForm.action;
        response = await this.#submit(step, url, new URLSearchParams(consentForm.hiddenFields));
      } else {
        throw new LoginError(step, `${describeResponse(response)} is neither the login nor the consent page`, {
          status: response.status,
        });
      }
    }

    throw new LoginError(step, `no redirect to the redirect URI after ${MAX_HOPS} requests`);
  }

  async #submit(step, url, fields) {
    const response = await this.#request(step, url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields,
    });

    // The login page comes back with 401 and an alert when the credentials are wrong.
    if (response.status === 401) {
      const html = await response.text();
      const alert = /role="alert">([^<]*)</.exec(html)?.[1];
      throw new LoginError(step, `${describeResponse(response)}: ${alert ?? 'unauthorized'}`, {
        status: response.status,
      });
    }
    return response;
  }

  async #request(step, url, init) {
    const headers = { accept: 'text/html', ...init.headers };
    const cookie = this.#cookies.headerFor(url);
    if (cookie !== '') {
      headers.cookie = cookie;
    }

    const response = await send(step, this.#fetch, url, { ...init, headers });
    this.#cookies.store(url, response.headers.getSetCookie());
    return response;
  }
}

/**
 * Cookie store for one flow: host-only cookies, matched by origin and path (RFC 6265 section
 * 5.1.4). Cookies with `Max-Age` <= 0 or an `Expires` in the past are deleted.
 */
class CookieJar {
  #cookies = new Map();

  store(url, setCookieHeaders) {
    for (const header of setCookieHeaders) {
      const [pair, ...attributes] = header.split(';');
      const separator = pair.indexOf('=');
      if (separator <= 0) {
        continue;
      }
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();

      let path = defaultCookiePath(url.pathname);
      let expired = false;
      for (const attribute of attributes) {
        const [key, ...rest] = attribute.trim().split('=');
        const attributeValue = rest.join('=');
        const lowerKey = key.toLowerCase();
        if (lowerKey === 'path' && attributeValue.startsWith('/')) {
          path = attributeValue;
        } else if (lowerKey === 'max-age') {
          expired = Number(attributeValue) <= 0;
        } else if (lowerKey === 'expires') {
          expired = Date.parse(attributeValue) <= Date.now();
        }
      }

      const key = `${url.origin} ${path} ${name}`;
      if (expired) {
        this.#cookies.delete(key);
      } else {
        this.#cookies.set(key, { origin: url.origin, path, name, value });
      }
    }
  }

  headerFor(url) {
    const matching = [...this.#cookies.values()].filter(
      (cookie) => cookie.origin === url.origin && pathMatches(url.pathname, cookie.path),
    );
    // Longer paths first, as browsers send them.
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.map((cookie) => `${cookie.name}=${cookie.value}`).join('; ');
  }
}

function defaultCookiePath(requestPath) {
  const lastSlash = requestPath.lastIndexOf('/');
  return lastSlash <= 0 ? '/' : requestPath.slice(0, lastSlash);
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) {
    return true;
  }
  if (!requestPath.startsWith(cookiePath)) {
    return false;
  }
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/**
 * Finds the form with the given id and returns its absolute action URL and hidden fields.
 * It reads only the markup that `interactions.mjs` writes: double-quoted attributes.
 */
function findForm(html, id, pageUrl) {
  for (const formMatch of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = parseAttributes(formMatch[1]);
    if (attributes.id !== id) {
      continue;
    }

    const hiddenFields = [];
    for (const inputMatch of formMatch[2].matchAll(/<input\b([^>]*)>/gi)) {
      const input = parseAttributes(inputMatch[1]);
      if (input.type === 'hidden' && input.name !== undefined) {
        hiddenFields.push([input.name, input.value ?? '']);
      }
    }
    return { action: new URL(attributes.action ?? '', pageUrl), hiddenFields };
  }
  return undefined;
}

function parseAttributes(source) {
  const attributes = {};
  for (const [, name, value] of source.matchAll(/([\w-]+)(?:="([^"]*)")?/g)) {
    attributes[name.toLowerCase()] = value === undefined ? '' : unescapeHtml(value);
  }
  return attributes;
}

function unescapeHtml(text) {
  return text
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

function isRedirect(status) {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function isRedirectUri(url, redirectUri) {
  const expected = new URL(redirectUri);
  return url.origin === expected.origin && url.pathname === expected.pathname;
}

// Request URL of each response, for error messages: `response.url` is empty with some fetch
// implementations.
const requestUrls = new WeakMap();

async function send(step, fetch, url, init) {
  try {
    const response = await fetch(url, { ...init, redirect: 'manual' });
    requestUrls.set(response, new URL(url));
    return response;
  } catch (cause) {
    const target = new URL(url);
    throw new LoginError(step, `request to ${target.origin}${target.pathname} failed: ${cause.message}`);
  }
}

async function readJson(step, response) {
  const contentType = response.headers.get('content-type') ?? '';
  if (!contentType.includes('json')) {
    await response.body?.cancel();
    throw new LoginError(step, `${describeResponse(response)} is not JSON (content-type ${JSON.stringify(contentType)})`, {
      status: response.status,
    });
  }
  try {
    return await response.json();
  } catch {
    throw new LoginError(step, `${describeResponse(response)} has an invalid JSON body`, {
      status: response.status,
    });
  }
}

/**
 * Describes an unexpected response: status, the URL without its query (which may carry a code),
 * and the OAuth error or a short plain-text excerpt of the body when there is one.
 */
async function describeFailure(response) {
  const contentType = response.headers.get('content-type') ?? '';
  if (contentType.includes('json')) {
    const payload = await response.json().catch(() => undefined);
    return `${describeResponse(response)}: ${describeOAuthError(payload)}`;
  }
  if (contentType.startsWith('text/plain')) {
    const text = (await response.text()).trim().slice(0, MAX_QUOTED_BODY);
    return `${describeResponse(response)}: ${text}`;
  }
  await response.body?.cancel();
  return `unexpected ${describeResponse(response)}`;
}

function describeResponse(response) {
  const url = requestUrls.get(response);
  if (url === undefined) {
    return `HTTP ${response.status}`;
  }
  return `HTTP ${response.status} from ${url.origin}${url.pathname}`;
}

function describeOAuthError(payload) {
  if (typeof payload?.error !== 'string') {
    return 'no OAuth error in the response';
  }
  return payload.error_description === undefined
    ? payload.error
    : `${payload.error} (${payload.error_description})`;
}

function basicAuthorization(clientId, clientSecret) {
  // RFC 6749 section 2.3.1: form-encode both parts before base64.
  const encode = (value) => new URLSearchParams({ value }).toString().slice('value='.length);
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

function toList(value) {
  if (value === undefined) {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}

function requireStrings(values) {
  for (const [name, value] of Object.entries(values)) {
    if (typeof value !== 'string' || value === '') {
      throw new TypeError(`${name} is required and must be a non-empty string`);
    }
  }
}
