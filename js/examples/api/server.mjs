/**
 * The API of the example apps: a node:http resource server on 127.0.0.1 that checks each
 * bearer token with `verifyToken` from `portcullis/verify` (the Node.js build) and answers
 * JSON. Failures get RFC 6750 replies: the status from `TokenError.status` and a
 * `WWW-Authenticate: Bearer` challenge.
 *
 * The key set comes from the authorization server's `jwks_uri` (found by discovery) and is
 * fetched again when a token names a key it lacks, at most once per 30 seconds.
 *
 * Run `node js/examples/api/server.mjs --help` for the command line.
 */

import { once } from 'node:events';
import { createServer } from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { TokenError, verifyToken } from 'portcullis/verify';

export const DEFAULT_AUDIENCE = 'https://api.portcullis.test';
export const DEFAULT_REQUIRED_SCOPE = 'api:read';
export const PROFILE_PATH = '/api/profile';

const REALM = 'portcullis-example';

// A token naming an unknown `kid` triggers a refetch. This interval bounds how often anyone
// can make the API call the authorization server that way.
const DEFAULT_JWKS_REFETCH_INTERVAL_MS = 30_000;

// Time limit of each discovery and JWKS request. A server that does not respond in time is
// treated as down.
const FETCH_TIMEOUT_MS = 5_000;

// How long a browser may cache a preflight response.
const PREFLIGHT_MAX_AGE_SECONDS = 600;

// RFC 6750 §3: quoted attribute values may contain %x20-21 / %x23-5B / %x5D-7E only.
const DISALLOWED_IN_ATTRIBUTE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;

// RFC 6750 §2.1: `Bearer` followed by one b64token.
const BEARER_CREDENTIALS = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * Starts the example API on 127.0.0.1.
 *
 * `GET /api/profile` verifies the bearer token and returns who it names and what the token
 * allows. Browsers on `allowedOrigins` may call it (CORS with the `Authorization` header);
 * other origins get no CORS headers.
 *
 * @param {object} options
 * @param {string} options.issuer issuer identifier of the authorization server; its
 *   discovery document must name the same issuer
 * @param {string[]} options.allowedOrigins origins of the apps, e.g. `http://127.0.0.1:5173`
 * @param {string} [options.audience] accepted `aud`; default `https://api.portcullis.test`
 * @param {string} [options.requiredScope] scope every request needs; default `api:read`
 * @param {number} [options.port=0] TCP port; 0 picks a free one
 * @param {number} [options.jwksRefetchIntervalMs=30000] minimum time between two fetches of
 *   the key set caused by tokens with an unknown `kid`
 * @param {{ info: Function, error: Function }} [options.logger=console]
 * @returns {Promise<{ url: string, port: number, profileUrl: string, policy: object,
 *   close: () => Promise<void> }>} `policy` is the `verifyToken` policy in use
 */
export async function startApiServer(options) {
  const {
    issuer,
    allowedOrigins,
    audience = DEFAULT_AUDIENCE,
    requiredScope = DEFAULT_REQUIRED_SCOPE,
    port = 0,
    jwksRefetchIntervalMs = DEFAULT_JWKS_REFETCH_INTERVAL_MS,
    logger = console,
  } = options;

  if (typeof issuer !== 'string' || URL.parse(issuer) === null) {
    throw new TypeError(`invalid issuer ${JSON.stringify(issuer)}: expected an absolute URL`);
  }
  if (!Array.isArray(allowedOrigins) || allowedOrigins.some((origin) => URL.parse(origin)?.origin !== origin)) {
    throw new TypeError(
      `invalid allowedOrigins ${JSON.stringify(allowedOrigins)}: expected origins such as "http://127.0.0.1:5173"`,
    );
  }

  // The same schema as a provider of the Envoy filter. `profile: 'rfc9068'` requires
  // `typ: at+jwt` and the claims of RFC 9068 §2.2.
  const policy = {
    issuer,
    audiences: [audience],
    algorithms: ['RS256', 'ES256'],
    profile: 'rfc9068',
    scopes: { all_of: [requiredScope] },
  };
  const keySet = await createKeySet(issuer, jwksRefetchIntervalMs, logger);

  const server = createServer((req, res) => {
    handleRequest({ req, res, policy, keySet, allowedOrigins, requiredScope, logger }).catch((error) => {
      logger.error(`api: ${req.method} ${req.url} failed`, error);
      if (!res.headersSent) {
        sendJson(res, 500, { error: 'server_error' });
      } else {
        res.destroy();
      }
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');

  const actualPort = server.address().port;
  const url = `http://127.0.0.1:${actualPort}`;

  let closing;
  return {
    url,
    port: actualPort,
    profileUrl: `${url}${PROFILE_PATH}`,
    policy,
    close() {
      closing ??= new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handleRequest({ req, res, policy, keySet, allowedOrigins, requiredScope, logger }) {
  const origin = req.headers.origin;
  const corsAllowed = origin !== undefined && allowedOrigins.includes(origin);
  if (corsAllowed) {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-expose-headers', 'WWW-Authenticate');
  }
  res.setHeader('vary', 'Origin');

  const { pathname } = new URL(req.url, 'http://127.0.0.1');
  if (pathname !== PROFILE_PATH) {
    sendJson(res, 404, { error: 'not_found', path: pathname });
    return;
  }

  if (req.method === 'OPTIONS') {
    if (!corsAllowed) {
      sendJson(res, 403, { error: 'origin_not_allowed', origin: origin ?? null });
      return;
    }
    res.writeHead(204, {
      'access-control-allow-methods': 'GET',
      'access-control-allow-headers': 'Authorization',
      'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
    });
    res.end();
    return;
  }
  if (req.method !== 'GET') {
    res.setHeader('allow', 'GET, OPTIONS');
    sendJson(res, 405, { error: 'method_not_allowed', method: req.method });
    return;
  }

  let verified;
  try {
    const token = readBearerToken(req.headers.authorization);
    verified = await verifyWithKeySet(token, keySet, policy);
  } catch (error) {
    if (!(error instanceof TokenError)) {
      throw error;
    }
    logger.info(`api: rejected ${req.method} ${pathname}: ${error.code} (HTTP ${error.status})`);
    rejectRequest(res, error, requiredScope, logger);
    return;
  }

  const { claims } = verified;
  sendJson(res, 200, {
    message: `Hello ${claims.sub}, portcullis verified your token.`,
    subject: claims.sub,
    clientId: claims.client_id,
    audience: claims.aud,
    scopes: verified.scopes,
    expiresAt: claims.exp,
    algorithm: verified.algorithm,
    keyId: verified.keyId,
  });
}

/**
 * Reads the token of an `Authorization: Bearer` header (RFC 6750 §2.1).
 *
 * @throws {TokenError} `token_missing` without the header or with another scheme,
 *   `authorization_malformed` for a Bearer header that is not one b64token.
 */
function readBearerToken(header) {
  if (header === undefined || !/^bearer(?: |$)/i.test(header)) {
    throw new TokenError('token_missing', 401, 'no bearer token in the Authorization header');
  }
  const match = BEARER_CREDENTIALS.exec(header);
  if (match === null) {
    throw new TokenError('authorization_malformed', 400, 'the Authorization header is not "Bearer" and one token');
  }
  return match[1];
}

async function verifyWithKeySet(token, keySet, policy) {
  try {
    return verifyToken(token, await keySet.current(), policy);
  } catch (error) {
    if (error instanceof TokenError && error.code === 'key_not_found' && (await keySet.refresh())) {
      return verifyToken(token, await keySet.current(), policy);
    }
    throw error;
  }
}

/** Sends the RFC 6750 §3 reply for a rejected request. */
function rejectRequest(res, error, requiredScope, logger) {
  if (error.status === 500) {
    // `config_invalid`: the policy or key set is broken, which no client can fix.
    logger.error(`api: cannot verify tokens (${error.code}): ${error.message}`);
    sendJson(res, 500, { error: 'server_error' });
    return;
  }

  const attributes = [`realm="${REALM}"`];
  const bearerError = bearerErrorFor(error);
  if (bearerError !== null) {
    attributes.push(`error="${bearerError}"`);
    attributes.push(`error_description="${error.message.replace(DISALLOWED_IN_ATTRIBUTE, '?')}"`);
  }
  if (bearerError === 'insufficient_scope') {
    attributes.push(`scope="${requiredScope}"`);
  }
  res.setHeader('www-authenticate', `Bearer ${attributes.join(', ')}`);
  sendJson(res, error.status, {
    error: bearerError ?? 'token_missing',
    error_description: error.message,
    code: error.code,
  });
}

/**
 * Returns the RFC 6750 §3.1 error code for a TokenError's status, or null for a request
 * without credentials, which gets a challenge without an error (§3.1, last paragraph).
 */
function bearerErrorFor(error) {
  if (error.code === 'token_missing') {
    return null;
  }
  switch (error.status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'invalid_token';
    case 403:
      return 'insufficient_scope';
    default:
      throw new RangeError(`TokenError ${error.code} has status ${error.status}, which RFC 6750 does not assign`);
  }
}

/**
 * Creates the key set of the issuer: discovery gives `jwks_uri`, which is fetched now and
 * again by `refresh()`.
 */
async function createKeySet(issuer, refetchIntervalMs, logger) {
  const discoveryUrl = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const metadata = await fetchJson(discoveryUrl);
  if (metadata.issuer !== issuer) {
    throw new Error(`discovery at ${discoveryUrl} names issuer ${metadata.issuer}, expected ${issuer}`);
  }
  if (typeof metadata.jwks_uri !== 'string') {
    throw new Error(`discovery at ${discoveryUrl} has no jwks_uri`);
  }

  const jwksUri = metadata.jwks_uri;
  let jwks = await fetchJson(jwksUri);
  let fetchedAt = Date.now();
  logger.info(`api: fetched ${jwks.keys?.length ?? 0} keys from ${jwksUri}`);

  return {
    async current() {
      return jwks;
    },
    /** Fetches the key set again unless it was fetched recently; returns whether it did. */
    async refresh() {
      if (Date.now() - fetchedAt < refetchIntervalMs) {
        return false;
      }
      fetchedAt = Date.now();
      try {
        jwks = await fetchJson(jwksUri);
      } catch (error) {
        logger.error(`api: refetching ${jwksUri} failed, keeping the old key set`, error);
        return false;
      }
      logger.info(`api: refetched ${jwks.keys?.length ?? 0} keys from ${jwksUri}`);
      return true;
    },
  };
}

async function fetchJson(url) {
  const request = () => fetch(url, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  let response;
  try {
    response = await request();
  } catch (error) {
    // fetch may pick a pooled keep-alive connection that the server has closed, after a
    // restart for example, and fail with "fetch failed". A second attempt opens a new one.
    if (!(error instanceof TypeError)) {
      throw error;
    }
    response = await request();
  }
  if (!response.ok) {
    throw new Error(`GET ${url} returned HTTP ${response.status}`);
  }
  return response.json();
}

function sendJson(res, status, body) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  });
  res.end(`${JSON.stringify(body)}\n`);
}

const USAGE = `Usage: node js/examples/api/server.mjs --issuer URL --origin URL... [--port N]

Starts the example API on 127.0.0.1 and prints one JSON line with its URLs on stdout once it
is ready. Runs until SIGTERM or SIGINT.

  --issuer URL   issuer of the authorization server, e.g. http://127.0.0.1:4000
  --origin URL   origin of an app allowed to call the API; repeat for several
  --port N       TCP port to listen on (default 0: any free port)
  -h, --help     print this help
`;

async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      issuer: { type: 'string' },
      origin: { type: 'string', multiple: true, default: [] },
      port: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.issuer === undefined) {
    throw new TypeError('--issuer is required, e.g. --issuer http://127.0.0.1:4000');
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new TypeError(`invalid --port ${values.port}: expected an integer from 0 to 65535`);
  }

  // stdout carries only the JSON line, so log lines go to stderr.
  const logger = { info: (message) => console.error(message), error: console.error };
  const api = await startApiServer({ issuer: values.issuer, allowedOrigins: values.origin, port, logger });
  process.stdout.write(`${JSON.stringify({ url: api.url, port: api.port, profileUrl: api.profileUrl })}\n`);
  console.error(`api: started on ${api.url}, pid ${process.pid}`);

  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, async () => {
      console.error(`api: ${signal} received, stopping`);
      await api.close();
      console.error('api: stopped');
    });
  }
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`api: ${error.message}`);
    process.exitCode = 1;
  });
}
