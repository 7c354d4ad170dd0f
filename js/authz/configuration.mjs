/**
 * Option defaults and the oidc-provider configuration of the test authorization server.
 */

import { randomBytes } from 'node:crypto';

import { errors } from 'oidc-provider';

import { escapeHtml, renderPage } from './html.mjs';
import { createMemoryAdapterFactory } from './memory-store.mjs';
import { generateSigningKeys } from './keys.mjs';

export const DEFAULT_RESOURCE = 'https://api.portcullis.test';
export const DEFAULT_RESOURCE_SCOPE = 'api:read api:write';
export const DEFAULT_REDIRECT_URI = 'http://127.0.0.1/callback';
export const PUBLIC_CLIENT_ID = 'portcullis-demo';
export const API_CLIENT_ID = 'portcullis-api';

const HOUR_SECONDS = 60 * 60;
const DAY_SECONDS = 24 * HOUR_SECONDS;
const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = HOUR_SECONDS;

const DEFAULT_ACCOUNTS = [
  {
    username: 'alice',
    password: 'wonderland',
    claims: { name: 'Alice Liddell', email: 'alice@portcullis.test', email_verified: true },
  },
];

/**
 * Validates the options of `startAuthorizationServer` and fills in the defaults.
 *
 * @param {object} options
 * @returns {Promise<object>} settings with every field present
 */
export async function resolveSettings(options) {
  const {
    port = 0,
    issuer,
    keys,
    resources = [{ url: DEFAULT_RESOURCE }],
    redirectUris = [DEFAULT_REDIRECT_URI],
    clients,
    accounts = DEFAULT_ACCOUNTS,
    apiClientSecret = randomBytes(32).toString('base64url'),
    logger = console,
  } = options;

  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`invalid port ${JSON.stringify(port)}: expected an integer from 0 to 65535`);
  }
  if (issuer !== undefined) {
    checkHttpUrl(issuer, 'issuer');
  }

  const signingKeys = keys === undefined ? await generateSigningKeys() : keys;
  if (!Array.isArray(signingKeys) || signingKeys.length === 0) {
    throw new TypeError('invalid keys: expected a non-empty array of private JWKs');
  }

  if (!Array.isArray(resources) || resources.length === 0) {
    throw new TypeError('invalid resources: expected a non-empty array');
  }
  const resourceServers = new Map();
  for (const resource of resources) {
    const server = resolveResource(resource, signingKeys);
    if (resourceServers.has(server.url)) {
      throw new TypeError(`resource ${server.url} is listed twice`);
    }
    resourceServers.set(server.url, server);
  }

  if (!Array.isArray(redirectUris) || redirectUris.length === 0) {
    throw new TypeError('invalid redirectUris: expected a non-empty array of URLs');
  }
  for (const uri of redirectUris) {
    checkHttpUrl(uri, 'redirect URI');
  }

  return {
    port,
    issuer,
    keys: structuredClone(signingKeys),
    resourceServers,
    clients: clients ?? defaultClients(redirectUris, apiClientSecret),
    accounts: indexAccounts(accounts),
    apiClient: { clientId: API_CLIENT_ID, clientSecret: apiClientSecret },
    logger,
  };
}

function resolveResource(resource, signingKeys) {
  const {
    url,
    scope = DEFAULT_RESOURCE_SCOPE,
    audience = url,
    alg = 'RS256',
    accessTokenTTL = DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
    accessTokenFormat = 'jwt',
  } = resource ?? {};

  checkHttpUrl(url, 'resource url');
  if (typeof scope !== 'string') {
    throw new TypeError(`invalid scope for resource ${url}: expected a space-separated string`);
  }
  if (!Number.isInteger(accessTokenTTL) || accessTokenTTL <= 0) {
    throw new TypeError(
      `invalid accessTokenTTL ${JSON.stringify(accessTokenTTL)} for resource ${url}: expected a positive integer of seconds`,
    );
  }
  if (accessTokenFormat !== 'jwt' && accessTokenFormat !== 'opaque') {
    throw new TypeError(`invalid accessTokenFormat ${JSON.stringify(accessTokenFormat)} for resource ${url}: expected "jwt" or "opaque"`);
  }
  if (accessTokenFormat === 'jwt' && !signingKeys.some((key) => key.alg === alg)) {
    throw new TypeError(
      `resource ${url} signs with ${alg}, but no key in keys has "alg": "${alg}". Add such a key or pick another alg`,
    );
  }

  return { url, scope, audience, alg, accessTokenTTL, accessTokenFormat };
}

function defaultClients(redirectUris, apiClientSecret) {
  return [
    {
      client_id: PUBLIC_CLIENT_ID,
      client_name: 'portcullis demo',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [...redirectUris],
    },
    {
      // A resource server client, which only calls the introspection and revocation endpoints.
      client_id: API_CLIENT_ID,
      client_secret: apiClientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ];
}

function indexAccounts(accounts) {
  if (!Array.isArray(accounts)) {
    throw new TypeError('invalid accounts: expected an array of { username, password, claims }');
  }
  const byUsername = new Map();
  for (const { username, password, claims = {} } of accounts) {
    if (typeof username !== 'string' || username === '' || typeof password !== 'string') {
      throw new TypeError('invalid account: username must be a non-empty string and password a string');
    }
    byUsername.set(username, { password, claims: { ...claims } });
  }
  return byUsername;
}

function checkHttpUrl(value, label) {
  const url = typeof value === 'string' ? URL.parse(value) : null;
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new TypeError(`invalid ${label} ${JSON.stringify(value)}: expected an http or https URL`);
  }
}

/**
 * Builds the oidc-provider configuration object from resolved settings.
 *
 * @param {Awaited<ReturnType<typeof resolveSettings>>} settings
 * @returns {import('oidc-provider').Configuration}
 */
export function buildProviderConfiguration(settings) {
  const { resourceServers, accounts } = settings;
  const [defaultResource] = resourceServers.keys();

  return {
    adapter: createMemoryAdapterFactory(),
    clients: settings.clients,
    jwks: { keys: settings.keys },
    cookies: { keys: [randomBytes(32).toString('base64url')] },

    // Only the authorization code flow: no implicit or hybrid responses.
    responseTypes: ['code'],

    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },

    async findAccount(ctx, accountId) {
      const account = accounts.get(accountId);
      if (account === undefined) {
        return undefined;
      }
      return {
        accountId,
        async claims() {
          return { sub: accountId, ...account.claims };
        },
      };
    },

    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },

    // oidc-provider 9 supports only the S256 method: it rejects `plain`, any other value and a
    // code_challenge without code_challenge_method. This makes PKCE mandatory for
    // confidential clients too.
    pkce: { required: () => true },

    // Refresh tokens go to every client allowed the refresh_token grant. oidc-provider's default
    // also demands the `offline_access` scope, which it drops from requests without
    // `prompt=consent`, as OpenID Connect Core requires.
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },

    // Every helper that oidc-provider ships as a placeholder is set here, because calling a
    // placeholder prints a notice on stdout, where the command line prints its JSON line.
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
      AuthorizationCode: 60,
      Grant: 14 * DAY_SECONDS,
      IdToken: HOUR_SECONDS,
      Interaction: HOUR_SECONDS,
      RefreshToken: 14 * DAY_SECONDS,
      Session: 14 * DAY_SECONDS,
    },

    // Browsers may call the token, revocation and introspection endpoints of a public client
    // from the origins of its redirect URIs.
    clientBasedCORS(ctx, origin, client) {
      if (client.clientAuthMethod !== 'none') {
        return false;
      }
      return client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin);
    },

    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = renderPage('Error', `
    <h1>Authorization failed</h1>
    <p><code>${escapeHtml(out.error)}</code></p>
    <p>${escapeHtml(out.error_description ?? '')}</p>`);
    },

    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        // A confidential client (a resource server) may introspect any token; a public client
        // only its own.
        async allowedPolicy(ctx, client, token) {
          return client.clientAuthMethod !== 'none' || token.clientId === client.clientId;
        },
      },
      revocation: {
        enabled: true,
        // RFC 7009 section 2.1: a client may revoke only tokens issued to it. A public client
        // gets the same 200 response either way, so it cannot probe for valid tokens.
        async allowedPolicy(ctx, client, token) {
          if (token.clientId === client.clientId) {
            return true;
          }
          if (client.clientAuthMethod === 'none') {
            return false;
          }
          throw new errors.InvalidRequest('the token was not issued to this client');
        },
      },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A request without `resource` gets the first configured resource server. At the token
        // endpoint (`oneOf` set) the granted resources are returned unchanged, so a grant that
        // covers several resources still needs an explicit `resource` there.
        async defaultResource(ctx, client, oneOf) {
          return oneOf ?? defaultResource;
        },
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          const server = resourceServers.get(resourceIndicator);
          if (server === undefined) {
            throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          }
          // Opaque access tokens are the ones oidc-provider can introspect and revoke.
          if (server.accessTokenFormat === 'opaque') {
            return { scope: server.scope, audience: server.audience, accessTokenTTL: server.accessTokenTTL, accessTokenFormat: 'opaque' };
          }
          return {
            scope: server.scope,
            audience: server.audience,
            accessTokenTTL: server.accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: server.alg } },
          };
        },
      },
    },
  };
}
