// Remote I/O of the edge worker: key sets, revocation lists and introspection calls. It sends
// the HTTP requests the gate lists as due, with a timeout and a body-size limit, and reports
// each result to the gate. It copies fetched key sets and revocation lists to the Cache API so
// that new isolates start with them. The gate (`portcullis/gate`) decides when to fetch and
// what to serve, so this module only moves bytes.

/** Name of the Cache API cache that contains fetched key sets and revocation lists. */
export const KEY_CACHE_NAME = 'portcullis:jwks';

/** Response header of a cached document: when it was fetched, in milliseconds since the epoch. */
const FETCHED_AT_HEADER = 'x-portcullis-fetched-at';

const SERVER = {
  jwks: 'key server',
  discovery: 'discovery endpoint',
  revocation_list: 'revocation list server',
  introspection: 'introspection endpoint',
};

const WHAT = {
  jwks: 'key set fetch',
  discovery: 'key set fetch',
  revocation_list: 'revocation list fetch',
  introspection: 'introspection',
};

/** A fetch failure whose message is the reason reported to the gate. */
class FetchError extends Error {}

/**
 * Reads at most `maxBytes` of a response body. Throws a FetchError for a larger body, before
 * reading more than `maxBytes + 1` bytes of it.
 */
async function readLimited(response, maxBytes, server) {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw new FetchError(`the ${server}'s response is ${declared} bytes, more than the maximum of ${maxBytes}`);
  }
  if (response.body === null) {
    return new Uint8Array(0);
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new FetchError(`the ${server}'s response is more than the maximum of ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/**
 * Performs the fetches a gate lists as due and reports their results to it.
 *
 * Each fetch has an identifier (`due.id`); at most one fetch per identifier is in flight, and
 * every request that waits for a provider awaits that provider's fetches in flight. Fetched
 * key sets and revocation lists are copied to the Cache API (when the runtime has one) under
 * their configured URLs, and a new isolate adopts those copies before its first decision.
 * Introspection answers stay in the isolate: they answer for one token, and the request
 * that carries them holds the token and the client secret.
 */
export class KeyFetcher {
  #gate;
  #fetch;
  #caches;
  #now;
  #log;
  /** @type {{ id: string, name: string, url: string, maxAgeMs: number }[]} documents to persist */
  #documents;
  /** @type {Map<string, { provider: string, run: Promise<void> }>} fetches in flight by id */
  #inFlight = new Map();
  #restored = null;

  /**
   * @param {object} options
   * @param {import('portcullis/gate').Gate} options.gate
   * @param {typeof fetch} options.fetch
   * @param {CacheStorage | undefined} options.caches the Cache API, if the runtime has one
   * @param {() => number} options.now milliseconds since the Unix epoch
   * @param {{ debug: Function, info: Function, warn: Function }} options.log
   */
  constructor({ gate, fetch, caches, now, log }) {
    this.#gate = gate;
    this.#fetch = fetch;
    this.#caches = caches;
    this.#now = now;
    this.#log = log;
    this.#documents = [];
    for (const provider of gate.providers) {
      if (provider.keys === 'remote') {
        this.#documents.push({
          id: provider.name,
          name: provider.name,
          url: provider.url,
          maxAgeMs: provider.cacheDurationMs + provider.staleIfErrorMs,
        });
      }
      if (provider.revocationListUrl !== null) {
        // A list past its stale-if-error window is refused by the gate anyway, so a day
        // bounds its copy generously.
        this.#documents.push({
          id: `${provider.name}#revocation_list`,
          name: provider.name,
          url: provider.revocationListUrl,
          maxAgeMs: 24 * 3_600_000,
        });
      }
    }
  }

  /** Adopts key sets and lists that other isolates left in the Cache API; runs once per isolate. */
  restore() {
    this.#restored ??= Promise.all(this.#documents.map((document) => this.#restoreOne(document)));
    return this.#restored;
  }

  async #restoreOne(document) {
    const cache = await this.#openCache();
    if (cache === null) {
      return;
    }
    try {
      const cached = await cache.match(document.url);
      if (cached === undefined) {
        return;
      }
      const fetchedAt = Number(cached.headers.get(FETCHED_AT_HEADER));
      if (!Number.isSafeInteger(fetchedAt) || fetchedAt <= 0) {
        await cached.body?.cancel();
        return;
      }
      const body = new Uint8Array(await cached.arrayBuffer());
      if (this.#gate.adoptKeys(document.id, body, fetchedAt)) {
        this.#log.debug(`portcullis: ${document.id}: adopted a copy fetched at ${new Date(fetchedAt).toISOString()} from the Cache API`);
      }
    } catch (error) {
      this.#log.warn(`portcullis: ${document.id}: could not read the cached copy: ${error.message}`);
    }
  }

  async #openCache() {
    if (this.#caches === undefined) {
      return null;
    }
    try {
      return await this.#caches.open(KEY_CACHE_NAME);
    } catch (error) {
      this.#log.warn(`portcullis: the Cache API is not usable, keys stay in this isolate only: ${error.message}`);
      this.#caches = undefined;
      return null;
    }
  }

  /**
   * Starts the fetches that the gate lists as due. `waitUntil` keeps the runtime alive until
   * a fetch that no request waits for (a background refresh) has finished.
   */
  startDue(waitUntil) {
    for (const due of this.#gate.fetchesDue(this.#now())) {
      const run = this.#run(due).finally(() => {
        this.#inFlight.delete(due.id);
      });
      this.#inFlight.set(due.id, { provider: due.provider, run });
      waitUntil(run);
    }
  }

  /**
   * Resolves when the fetches in flight for `providers` have finished, or after `timeoutMs`,
   * whichever comes first. With none in flight it waits `pollMs` at most, for a retry the
   * gate may allow by then.
   */
  async waitFor(providers, timeoutMs, pollMs = 100) {
    const wanted = new Set(providers);
    const running = [...this.#inFlight.values()].filter((fetch) => wanted.has(fetch.provider)).map((fetch) => fetch.run);
    const limit = running.length === 0 ? Math.min(timeoutMs, pollMs) : timeoutMs;
    let timer;
    const elapsed = new Promise((resolve) => {
      timer = setTimeout(resolve, Math.max(0, limit));
    });
    try {
      await Promise.race([Promise.all(running), elapsed]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one fetch to its end, discovery included, and reports every result to the gate. */
  async #run(due) {
    let current = due;
    for (;;) {
      let body;
      try {
        body = await this.#send(current);
      } catch (error) {
        const reason = error instanceof FetchError ? error.message : `the ${SERVER[current.kind]} could not be reached: ${error.message}`;
        this.#gate.fetchFailed(current.id, reason, this.#now());
        this.#log.warn(`portcullis: provider ${current.provider}: ${WHAT[current.kind]} failed: ${reason}`);
        return;
      }
      const fetchedAt = this.#now();
      const result = this.#gate.fetchSucceeded(current.id, body, fetchedAt);
      switch (result.outcome) {
        case 'next':
          this.#log.debug(`portcullis: provider ${current.provider}: discovery found the key set at ${result.fetch.url}`);
          current = result.fetch;
          continue;
        case 'stored':
          this.#reportStored(current, result);
          if (current.kind !== 'introspection') {
            await this.#persist(current.id, body, fetchedAt);
          }
          return;
        case 'failed':
          this.#log.warn(`portcullis: provider ${current.provider}: ${WHAT[current.kind]} failed: ${result.reason}`);
          return;
        default:
          return;
      }
    }
  }

  #reportStored(due, result) {
    const name = due.provider;
    if (due.kind === 'introspection') {
      this.#log.debug(`portcullis: provider ${name}: introspection answered ${result.active ? 'active' : 'not active'}`);
    } else if (due.kind === 'revocation_list') {
      this.#log.info(`portcullis: provider ${name}: fetched a revocation list of ${result.entries} entries`);
    } else {
      this.#log.info(`portcullis: provider ${name}: fetched ${result.keys} keys`);
      for (const reason of result.skipped) {
        this.#log.warn(`portcullis: provider ${name}: ${reason}`);
      }
    }
  }

  /** Sends one request within the fetch's timeout and size limit; only status 200 counts. */
  async #send({ kind, url, method, headers, body, timeoutMs, maxBytes }) {
    const server = SERVER[kind];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const requestHeaders = new Headers(headers);
      requestHeaders.set('user-agent', 'portcullis');
      const response = await this.#fetch(url, {
        method,
        headers: requestHeaders,
        body: body ?? undefined,
        // A redirect is reported as a failure, as in the Envoy filter, so the configured URL
        // is the only place keys, lists and answers come from.
        redirect: 'manual',
        signal: controller.signal,
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        const hint = { 504: ' (timed out)', 503: ' (unreachable or overloaded)' }[response.status] ?? '';
        throw new FetchError(`the ${server} responded with status ${response.status}${hint}`);
      }
      return await readLimited(response, maxBytes, server);
    } catch (error) {
      if (controller.signal.aborted) {
        throw new FetchError(`the ${server} timed out after ${timeoutMs} ms`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Copies a fetched document to the Cache API for other isolates, for as long as it may serve. */
  async #persist(id, body, fetchedAt) {
    const document = this.#documents.find((candidate) => candidate.id === id);
    const cache = await this.#openCache();
    if (cache === null || document === undefined) {
      return;
    }
    const maxAgeSeconds = Math.ceil(document.maxAgeMs / 1000);
    const response = new Response(body, {
      headers: {
        'content-type': 'application/json',
        'cache-control': `max-age=${maxAgeSeconds}`,
        [FETCHED_AT_HEADER]: String(fetchedAt),
      },
    });
    try {
      await cache.put(document.url, response);
    } catch (error) {
      this.#log.warn(`portcullis: ${id}: could not store a copy in the Cache API: ${error.message}`);
    }
  }
}
