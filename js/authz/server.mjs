/**
 * Test authorization server for portcullis: oidc-provider on 127.0.0.1 with JWT access tokens
 * (RFC 9068), resource indicators (RFC 8707), mandatory S256 PKCE, refresh tokens, revocation,
 * introspection and DPoP, plus its own login and consent pages.
 *
 * Run `node js/authz/server.mjs --help` for the command line.
 */

import { once } from 'node:events';
import { createServer } from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Provider } from 'oidc-provider';

import { buildProviderConfiguration, resolveSettings } from './configuration.mjs';
import { createInteractionHandler } from './interactions.mjs';

export { generateSigningKeys } from './keys.mjs';

/**
 * Starts an authorization server listening on 127.0.0.1.
 *
 * @param {object} [options]
 * @param {number} [options.port=0] TCP port; 0 picks a free one.
 * @param {string} [options.issuer] `iss` value and discovery `issuer`. Default
 *   `http://127.0.0.1:<port>`. Endpoints are always served at `http://127.0.0.1:<port>/`, so
 *   with another issuer pass `discoveryUrl` to `login`.
 * @param {object[]} [options.keys] private signing JWKs, each with `kid`, `alg` and `use: "sig"`.
 *   Default: a fresh RS256 and ES256 pair from `generateSigningKeys()`. The array is copied, so
 *   the same keys can be passed to several servers.
 * @param {{ url: string, scope?: string, audience?: string, alg?: string, accessTokenTTL?: number }[]} [options.resources]
 *   resource servers (RFC 8707). Defaults per entry: scope `api:read api:write`, audience = url,
 *   alg `RS256` (a key with that `alg` must be in `keys`), accessTokenTTL 3600 seconds.
 *   Default list: `[{ url: 'https://api.portcullis.test' }]`. A request without `resource` gets
 *   the first entry.
 * @param {string[]} [options.redirectUris=['http://127.0.0.1/callback']] redirect URIs of the
 *   default public client `portcullis-demo`.
 * @param {object[]} [options.clients] oidc-provider client metadata; replaces both default clients.
 * @param {{ username: string, password: string, claims?: object }[]} [options.accounts] default
 *   `alice` / `wonderland` with `name`, `email` and `email_verified`.
 * @param {string} [options.apiClientSecret] secret of the confidential client `portcullis-api`.
 *   Default: 32 random bytes, base64url.
 * @param {{ error: Function }} [options.logger=console] receives server errors.
 * @returns {Promise<{ issuer: string, port: number, jwksUri: string, discoveryUrl: string,
 *   tokenEndpoint: string, authorizationEndpoint: string, introspectionEndpoint: string,
 *   revocationEndpoint: string, apiClient: { clientId: string, clientSecret: string },
 *   provider: import('oidc-provider').Provider, close: () => Promise<void> }>}
 *   `provider` is the oidc-provider instance, for tests that need its models. `close` stops
 *   the server and drops open connections, and may be called more than once.
 */
export async function startAuthorizationServer(options = {}) {
  const settings = await resolveSettings(options);
  const { logger } = settings;

  // oidc-provider needs the issuer at construction time, and with port 0 the port is only known
  // once the server listens. The server therefore listens first and responds with 503 until
  // the provider is ready.
  let handleRequest = (req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' });
    res.end('the authorization server is starting\n');
  };
  const server = createServer((req, res) => handleRequest(req, res));
  server.listen(settings.port, '127.0.0.1');
  await once(server, 'listening');

  const { port } = server.address();
  const origin = `http://127.0.0.1:${port}`;
  const issuer = settings.issuer ?? origin;

  let provider;
  try {
    provider = new Provider(issuer, buildProviderConfiguration(settings));
  } catch (error) {
    server.close();
    throw error;
  }
  provider.use(destroyCodeAfterFailedRedemption);
  provider.on('server_error', (ctx, error) => {
    logger.error(`authorization server: ${ctx.method} ${ctx.path} failed`, error);
  });

  const handleInteraction = createInteractionHandler(provider, settings.accounts, logger);
  const handleProtocol = provider.callback();

  handleRequest = (req, res) => {
    handleInteraction(req, res)
      .then((handled) => {
        if (!handled) {
          handleProtocol(req, res);
        }
      })
      .catch((error) => {
        logger.error(`authorization server: ${req.method} ${req.url} failed`, error);
        res.destroy();
      });
  };

  let closing;
  async function close() {
    closing ??= new Promise((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });
    return closing;
  }

  return {
    issuer,
    port,
    jwksUri: `${origin}${provider.pathFor('jwks')}`,
    discoveryUrl: `${origin}/.well-known/openid-configuration`,
    tokenEndpoint: `${origin}${provider.pathFor('token')}`,
    authorizationEndpoint: `${origin}${provider.pathFor('authorization')}`,
    introspectionEndpoint: `${origin}${provider.pathFor('introspection')}`,
    revocationEndpoint: `${origin}${provider.pathFor('revocation')}`,
    apiClient: { ...settings.apiClient },
    provider,
    close,
  };
}

/**
 * Destroys an authorization code after a failed redemption, such as a wrong `code_verifier`.
 *
 * oidc-provider 9 checks PKCE before it marks a code as used, so without this step a party with a
 * stolen code could keep guessing verifiers. Destroying the code rather than marking it
 * consumed keeps oidc-provider from revoking the whole grant, which may also back tokens from
 * earlier logins of the same session.
 */
async function destroyCodeAfterFailedRedemption(ctx, next) {
  await next();

  const code = ctx.oidc?.params?.code;
  if (
    ctx.oidc?.route !== 'token'
    || ctx.oidc.params.grant_type !== 'authorization_code'
    || typeof code !== 'string'
    || ctx.body?.error !== 'invalid_grant'
  ) {
    return;
  }

  const authorizationCode = await ctx.oidc.provider.AuthorizationCode.find(code, { ignoreExpiration: true });
  await authorizationCode?.destroy();
}

const USAGE = `Usage: node js/authz/server.mjs [--port N] [--issuer URL] [--redirect-uri URL]...

Starts the portcullis test authorization server on 127.0.0.1 and prints one JSON line with
its issuer and endpoints on stdout once it is ready. Runs until SIGTERM or SIGINT.

  --port N            TCP port to listen on (default 0: any free port)
  --issuer URL        issuer identifier (default http://127.0.0.1:<port>)
  --redirect-uri URL  redirect URI of the client portcullis-demo; repeat for several
                      (default http://127.0.0.1/callback)
  -h, --help          print this help
`;

async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      issuer: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });

  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }

  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new TypeError(`invalid --port ${values.port}: expected an integer from 0 to 65535`);
  }

  const authorizationServer = await startAuthorizationServer({
    port,
    issuer: values.issuer,
    redirectUris: values['redirect-uri'],
  });

  const { issuer, jwksUri, discoveryUrl, tokenEndpoint, authorizationEndpoint } = authorizationServer;
  process.stdout.write(`${JSON.stringify({
    issuer, port: authorizationServer.port, jwksUri, discoveryUrl, tokenEndpoint, authorizationEndpoint,
  })}\n`);
  console.error(`authorization server: started, issuer ${issuer}, pid ${process.pid}`);

  const stop = async (signal) => {
    console.error(`authorization server: ${signal} received, stopping`);
    await authorizationServer.close();
    console.error('authorization server: stopped');
  };
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
      stop(signal).then(
        () => process.exit(0),
        (error) => {
          console.error('authorization server: failed to stop', error);
          process.exit(1);
        },
      );
    });
  }
}

function isMainModule() {
  if (process.argv[1] === undefined) {
    return false;
  }
  return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
}

if (isMainModule()) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`authorization server: ${error.message}`);
    process.exit(1);
  });
}
