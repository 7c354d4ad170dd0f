// The portcullis edge worker: verifies bearer tokens in front of an origin with the same
// configuration JSON as the Envoy filter, in Cloudflare Workers, workerd, or Node.js
// (through node.mjs).
//
// Bindings (environment variables):
//   PORTCULLIS_POLICY     required; the gate configuration as JSON text or as an object
//   ORIGIN                optional service binding (an object with `fetch`) to forward to
//   ORIGIN_URL            optional origin (`https://host[:port]`) to forward to, keeping
//                         the request's path and query
//   PORTCULLIS_LOG_LEVEL  optional; `debug`, `info`, `warn` (default) or `error`
// Without ORIGIN or ORIGIN_URL the request goes to its own URL, which on a Cloudflare route
// is the zone's origin.
//
// Every decision is the gate's (`portcullis/gate`): rules, token location, verification,
// DPoP proofs, introspection, revocation lists, claim headers, RFC 6750 replies, and when
// keys and lists are fetched, refreshed or given up. This module only moves requests,
// responses, key sets, lists and introspection calls.

import { Gate } from 'portcullis/gate';

import { KeyFetcher } from './keys.mjs';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 };

/** Returns a logger that prints lines at `level` and above through `sink` (the console). */
function createLog(level, sink) {
  const threshold = LEVELS[level] ?? LEVELS.warn;
  const at = (name, write) => (LEVELS[name] >= threshold ? (message) => write.call(sink, message) : () => {});
  return {
    debug: at('debug', sink.debug ?? sink.log),
    info: at('info', sink.info ?? sink.log),
    warn: at('warn', sink.warn ?? sink.log),
    error: at('error', sink.error ?? sink.log),
  };
}

/** Reads the policy binding as JSON text, so a change of it can be noticed. */
function policyText(env) {
  const policy = env?.PORTCULLIS_POLICY;
  if (typeof policy === 'string') {
    return policy;
  }
  if (policy !== null && typeof policy === 'object') {
    return JSON.stringify(policy);
  }
  throw new TypeError('the PORTCULLIS_POLICY binding is missing: set it to the gate configuration JSON');
}

/** Returns where to forward a request the gate allowed. */
function originTarget(env, url) {
  if (env.ORIGIN_URL === undefined || env.ORIGIN_URL === '') {
    return url;
  }
  const origin = new URL(env.ORIGIN_URL);
  if (origin.pathname !== '/' || origin.search !== '') {
    throw new TypeError(`ORIGIN_URL ${JSON.stringify(env.ORIGIN_URL)} must be an origin only, such as https://api.internal:8443`);
  }
  const target = new URL(url);
  target.protocol = origin.protocol;
  target.host = origin.host;
  return target.href;
}

/**
 * Returns `response` with `headers` (`[name, value]` pairs, e.g. a fresh `DPoP-Nonce`) set.
 * The origin's response headers may be immutable, so the response is copied when needed.
 */
function withHeaders(response, headers) {
  if (headers.length === 0) {
    return response;
  }
  const copy = new Response(response.body, response);
  for (const [name, value] of headers) {
    copy.headers.set(name, value);
  }
  return copy;
}

/** Builds a plain-text reply of the worker itself, for failures that are not RFC 6750 ones. */
function plainReply(status, text) {
  return new Response(`${text}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

/**
 * Creates a worker: an object with the Workers `fetch(request, env, ctx)` handler.
 *
 * The gate and its caches live as long as the worker object, which in a Workers isolate is
 * the module's lifetime. A different PORTCULLIS_POLICY value builds a new gate.
 *
 * @param {object} [options]
 * @param {typeof fetch} [options.fetch] used for key sets and for forwarding; default the global one
 * @param {CacheStorage | null} [options.caches] the Cache API; default the global `caches`, if any
 * @param {() => number} [options.now] the clock, in milliseconds since the Unix epoch
 * @param {Console} [options.console] where log lines go
 */
export function createWorker(options = {}) {
  const fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
  const cacheStorage = options.caches === null ? undefined : (options.caches ?? globalThis.caches);
  const now = options.now ?? (() => Date.now());
  const sink = options.console ?? globalThis.console;
  let state = null;

  function stateFor(env) {
    const source = env.PORTCULLIS_POLICY;
    const level = env.PORTCULLIS_LOG_LEVEL ?? 'warn';
    // The same binding value as before needs no parsing; Workers pass the same object or
    // string to every request of an isolate.
    if (state !== null && state.source === source && state.level === level) {
      return state;
    }
    const text = policyText(env);
    if (state?.text === text && state.level === level) {
      state.source = source;
      return state;
    }
    const log = createLog(level, sink);
    // The previous gate is left to the garbage collector: a fetch in flight may still use it.
    const gate = new Gate(text);
    state = {
      source,
      text,
      level,
      gate,
      log,
      keys: new KeyFetcher({ gate, fetch: fetchImpl, caches: cacheStorage, now, log }),
      pendingTimeoutMs: new Map(gate.providers.map((provider) => [provider.name, provider.pendingTimeoutMs])),
    };
    const remote = gate.providers.filter((provider) => provider.keys === 'remote').length;
    log.info(`portcullis: configured ${gate.providers.length} providers (${remote} with remote keys)`);
    return state;
  }

  /** Decides a request, waiting for keys as long as the providers' pending timeouts allow. */
  async function decide(current, parts, waitUntil) {
    const { gate, keys } = current;
    await keys.restore();
    keys.startDue(waitUntil);
    let decision = gate.decide(parts, now(), false);
    const waitingSince = now();
    while (decision.action === 'pending') {
      const limit = Math.max(...decision.providers.map((name) => current.pendingTimeoutMs.get(name) ?? 0));
      const remaining = waitingSince + limit - now();
      if (remaining <= 0) {
        return gate.decide(parts, now(), true);
      }
      // A refetch for an unknown `kid`, or an introspection call, becomes due during the
      // decision itself.
      keys.startDue(waitUntil);
      await keys.waitFor(decision.providers, remaining);
      keys.startDue(waitUntil);
      decision = gate.decide(parts, now(), now() >= waitingSince + limit);
    }
    return decision;
  }

  async function forward(env, request, allowed) {
    const headers = new Headers(request.headers);
    for (const name of allowed.removeHeaders) {
      headers.delete(name);
    }
    for (const [name, value] of allowed.setHeaders) {
      headers.set(name, value);
    }
    const target = originTarget(env, allowed.url);
    const init = { method: request.method, headers, body: request.body, redirect: 'manual' };
    if (request.body !== null) {
      // Node.js needs this to stream a request body; workerd ignores it.
      init.duplex = 'half';
    }
    const upstream = new Request(target, init);
    if (typeof env.ORIGIN?.fetch === 'function') {
      return env.ORIGIN.fetch(upstream);
    }
    return fetchImpl(upstream);
  }

  async function handle(request, env = {}, ctx = undefined) {
    const waitUntil = typeof ctx?.waitUntil === 'function' ? (promise) => ctx.waitUntil(promise) : () => {};
    let current;
    try {
      current = stateFor(env);
    } catch (error) {
      // Fail closed: without a valid policy nothing is forwarded.
      createLog('error', sink).error(`portcullis: not configured: ${error.message}`);
      return plainReply(500, 'portcullis_not_configured');
    }
    const { log } = current;
    const path = new URL(request.url).pathname;
    const parts = { method: request.method, url: request.url, headers: request.headers };
    const decision = await decide(current, parts, waitUntil);

    if (decision.action === 'deny') {
      log.debug(`portcullis: denied status=${decision.status} code=${decision.code} provider=${decision.provider ?? '-'} path=${path}: ${decision.message}`);
      return new Response(decision.body === '' ? null : decision.body, { status: decision.status, headers: decision.headers });
    }
    if (decision.action !== 'allow') {
      // The gate never returns `pending` on a final attempt; fail closed if it did.
      log.error(`portcullis: the gate returned no decision for path=${path}; responding with status 500`);
      return plainReply(500, 'portcullis_no_decision');
    }
    for (const warning of decision.warnings) {
      log.warn(`portcullis: ${warning}`);
    }
    let reason = 'verified';
    if (decision.corsPreflight) {
      reason = 'cors_preflight';
    } else if (decision.providers.length === 0) {
      reason = 'no_token_required';
    }
    log.debug(`portcullis: allowed reason=${reason} providers=${decision.providers.join(',')} path=${path}`);
    try {
      const response = await forward(env, request, decision);
      return withHeaders(response, decision.responseHeaders);
    } catch (error) {
      log.error(`portcullis: forwarding to the origin failed: ${error.message}`);
      return plainReply(502, 'portcullis_origin_unreachable');
    }
  }

  return { fetch: handle };
}

export default createWorker();
