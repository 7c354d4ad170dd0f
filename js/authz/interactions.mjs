/**
 * Login and consent pages of the test authorization server.
 *
 * oidc-provider redirects the user agent to `/interaction/<uid>` whenever an authorization
 * request needs the end-user. These handlers serve that path on the same `node:http` server as
 * `provider.callback()`:
 *
 * - `GET  /interaction/<uid>`          login form or consent form, depending on the prompt
 * - `POST /interaction/<uid>/login`    checks username and password against the in-memory accounts
 * - `POST /interaction/<uid>/confirm`  grants the requested scopes and resources (Grant API)
 * - `POST /interaction/<uid>/abort`    ends the request with `access_denied`
 *
 * The forms carry the ids `login-form` and `consent-form`, which `login.mjs` looks for.
 */

import { escapeHtml, renderPage } from './html.mjs';

const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/;

// Form bodies here contain a username and a password, so 16 KiB leaves a wide margin.
const MAX_FORM_BYTES = 16 * 1024;

/**
 * Creates the request handler for the interaction routes.
 *
 * The handler returns `false` for any path outside `/interaction/` so the caller can pass the
 * request on to oidc-provider.
 *
 * @param {import('oidc-provider').Provider} provider
 * @param {Map<string, { password: string }>} accounts accounts by username
 * @param {{ error: (...args: unknown[]) => void }} logger
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<boolean>}
 */
export function createInteractionHandler(provider, accounts, logger) {
  return async function handleInteraction(req, res) {
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    const match = INTERACTION_PATH.exec(pathname);
    if (match === null) {
      return false;
    }
    const [, uid, action] = match;

    try {
      await routeInteraction({ provider, accounts, req, res, uid, action });
    } catch (error) {
      respondToError(res, error, logger);
    }
    return true;
  };
}

async function routeInteraction({ provider, accounts, req, res, uid, action }) {
  const expectedMethod = action === undefined ? 'GET' : 'POST';
  if (req.method !== expectedMethod) {
    sendText(res, 405, `method ${req.method} is not allowed here, use ${expectedMethod}\n`, {
      allow: expectedMethod,
    });
    return;
  }

  // Reads the interaction named by the path-scoped `_interaction` cookie, and throws
  // SessionNotFound when the cookie or the stored interaction is missing.
  const interaction = await provider.interactionDetails(req, res);
  if (interaction.uid !== uid) {
    sendText(res, 400, 'the interaction in the URL does not match the interaction cookie\n');
    return;
  }

  if (action === undefined) {
    showPrompt(res, interaction);
  } else if (action === 'login') {
    await submitLogin(provider, accounts, req, res, interaction);
  } else if (action === 'confirm') {
    await submitConsent(provider, req, res, interaction);
  } else {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'the end-user denied the authorization request' },
      { mergeWithLastSubmission: false },
    );
  }
}

function showPrompt(res, interaction) {
  const { name } = interaction.prompt;
  if (name === 'login') {
    sendHtml(res, 200, renderLoginPage(interaction));
  } else if (name === 'consent') {
    sendHtml(res, 200, renderConsentPage(interaction));
  } else {
    sendText(res, 501, `the prompt "${name}" is not supported by this test server\n`);
  }
}

async function submitLogin(provider, accounts, req, res, interaction) {
  if (interaction.prompt.name !== 'login') {
    sendText(res, 409, `this interaction expects the "${interaction.prompt.name}" prompt, not login\n`);
    return;
  }

  const form = await readForm(req);
  const username = form.get('username') ?? '';
  const password = form.get('password') ?? '';
  const account = accounts.get(username);

  if (account === undefined || account.password !== password) {
    sendHtml(res, 401, renderLoginPage(interaction, 'Invalid username or password.'));
    return;
  }

  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: username } },
    { mergeWithLastSubmission: false },
  );
}

async function submitConsent(provider, req, res, interaction) {
  if (interaction.prompt.name !== 'consent') {
    sendText(res, 409, `this interaction expects the "${interaction.prompt.name}" prompt, not consent\n`);
    return;
  }

  const { details } = interaction.prompt;
  const { accountId } = interaction.session;
  const clientId = interaction.params.client_id;

  // An existing grant (same session and client) is extended. Otherwise a new one is created,
  // and its id goes back in the interaction result.
  const grant = interaction.grantId === undefined
    ? new provider.Grant({ accountId, clientId })
    : await provider.Grant.find(interaction.grantId);

  if (details.missingOIDCScope !== undefined) {
    grant.addOIDCScope(details.missingOIDCScope.join(' '));
  }
  if (details.missingOIDCClaims !== undefined) {
    grant.addOIDCClaims(details.missingOIDCClaims);
  }
  for (const [resource, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }

  const grantId = await grant.save();
  const consent = interaction.grantId === undefined ? { grantId } : {};

  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

function renderLoginPage(interaction, errorMessage) {
  const { uid, params } = interaction;
  const errorBlock = errorMessage === undefined
    ? ''
    : `<p class="error" role="alert">${escapeHtml(errorMessage)}</p>`;

  return renderPage('Sign in', `
    <h1>Sign in</h1>
    <p>Client <code>${escapeHtml(params.client_id)}</code> requests access.</p>
    ${errorBlock}
    <form id="login-form" method="post" action="/interaction/${escapeHtml(uid)}/login">
      <label>Username <input name="username" autocomplete="username" required autofocus></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button type="submit">Sign in</button>
    </form>
    ${renderAbortForm(uid)}`);
}

function renderConsentPage(interaction) {
  const { uid, params, prompt: { details } } = interaction;
  const items = [];

  for (const scope of details.missingOIDCScope ?? []) {
    items.push(`<li>OpenID scope <code>${escapeHtml(scope)}</code></li>`);
  }
  for (const claim of details.missingOIDCClaims ?? []) {
    items.push(`<li>claim <code>${escapeHtml(claim)}</code></li>`);
  }
  for (const [resource, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    const scopeList = scopes.length === 0 ? '(no scopes)' : scopes.map(escapeHtml).join(' ');
    items.push(`<li>API <code>${escapeHtml(resource)}</code>: <code>${scopeList}</code></li>`);
  }

  return renderPage('Authorize', `
    <h1>Authorize ${escapeHtml(params.client_id)}</h1>
    <p>Signed in as <code>${escapeHtml(interaction.session.accountId)}</code>. The client requests:</p>
    <ul>${items.join('')}</ul>
    <form id="consent-form" method="post" action="/interaction/${escapeHtml(uid)}/confirm">
      <button type="submit" autofocus>Allow</button>
    </form>
    ${renderAbortForm(uid)}`);
}

function renderAbortForm(uid) {
  return `<form id="abort-form" method="post" action="/interaction/${escapeHtml(uid)}/abort">
      <button type="submit">Deny</button>
    </form>`;
}

async function readForm(req) {
  const contentType = req.headers['content-type'] ?? '';
  if (!contentType.startsWith('application/x-www-form-urlencoded')) {
    throw new HttpError(415, 'the form must be sent as application/x-www-form-urlencoded');
  }

  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      throw new HttpError(413, `the form body is larger than ${MAX_FORM_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function respondToError(res, error, logger) {
  if (error instanceof HttpError) {
    sendText(res, error.status, `${error.message}\n`);
    return;
  }

  // oidc-provider's own errors (SessionNotFound when the interaction cookie is missing or the
  // interaction expired) carry an OAuth error code and an HTTP status.
  if (typeof error?.error === 'string' && typeof error?.statusCode === 'number') {
    const description = error.error_description ?? error.message;
    sendText(res, error.statusCode, `${error.error}: ${description}\n`);
    return;
  }

  logger.error('authorization server: interaction handler failed', error);
  if (!res.headersSent) {
    sendText(res, 500, 'internal error in the interaction handler\n');
  } else {
    res.destroy();
  }
}

function sendHtml(res, status, body) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(body);
}

function sendText(res, status, body, headers = {}) {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}
