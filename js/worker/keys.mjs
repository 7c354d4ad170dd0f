// Key-set I/O of the edge worker. It sends the HTTP requests the gate lists as due, one at a
// time per provider, with a timeout and a body-size limit. It copies fetched key sets to the
// Cache API so that new isolates start with keys. The gate (`portcullis/gate`) decides when
// to fetch and what to serve, so this module only moves bytes.

/** Name of the Cache API cache that contains fetched key sets. */
export const KEY_CACHE_NAME = 'portcullis:jwks';

/** Response header of a cached key set: when it was fetched, in milliseconds since the epoch. */
const FETCHED_AT_HEADER = 'x-portcullis-fetched-at';

const ACCEPT = {
  jwks: 'application/jwk-set+json, application/json',
  discovery: 'application/json',
};

const SERVER = {
  jwks: 'key server',
  discovery: 'discovery endpoint',
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
 * Each provider has at most one fetch in flight, and every request that waits for that
 * provider's keys awaits the same promise. Fetched key sets are copied to the Cache API
 * (when the runtime has one) under the provider's configured URL, and a new isolate adopts
 * those copies before its first decision.
 */
export class KeyFetcher {
  #gate;
  #fetch;
  #caches;
  #now;
  #log;
  /** @type {Map<string, object>} remote providers by name */
  #providers;
  /** @type {Map<string, Promise<void>>} the fetch in flight per provider */
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
    this.#providers = new Map(gate.providers.filter((provider) => provider.keys === 'remote').map((provider) => [provider.name, provider]));
  }

  /** Adopts key sets that other isolates left in the Cache API; runs once per isolate. */
  restore() {
    this.#restored ??= Promise.all([...this.#providers.values()].map((provider) => this.#restoreOne(provider)));
    return this.#restored;
  }

  async #restoreOne(provider) {
    const cache = await this.#openCache();
    if (cache === null) {
      return;
    }
    try {
      const cached = await cache.match(provider.url);
      if (cached === undefined) {
        return;
      }
      const fetchedAt = Number(cached.headers.get(FETCHED_AT_HEADER));
      if (!Number.isSafeInteger(fetchedAt) || fetchedAt <= 0) {
        await cached.body?.cancel();
        return;
      }
      const body = new Uint8Array(await cached.arrayBuffer());
      if (this.#gate.adoptKeys(provider.name, body, fetchedAt)) {
        this.#log.debug(`portcullis: provider ${provider.name}: adopted keys fetched at ${new Date(fetchedAt).toISOString()} from the Cache API`);
      }
    } catch (error) {
      this.#log.warn(`portcullis: provider ${provider.name}: could not read cached keys: ${error.message}`);
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
        this.#inFlight.delete(due.provider);
      });
      this.#inFlight.set(due.provider, run);
      waitUntil(run);
    }
  }

  /**
   * Resolves when the fetches in flight for `providers` have finished, or after `timeoutMs`,
   * whichever comes first. With none in flight it waits `pollMs` at most, for a retry the
   * gate may allow by then.
   */
  async waitFor(providers, timeoutMs, pollMs = 100) {
    const running = providers.map((name) => this.#inFlight.get(name)).filter((run) => run !== undefined);
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
        body = await this.#get(current);
      } catch (error) {
        const reason = error instanceof FetchError ? error.message : `the ${SERVER[current.kind]} could not be reached: ${error.message}`;
        this.#gate.fetchFailed(current.provider, reason, this.#now());
        this.#log.warn(`portcullis: provider ${current.provider}: key set fetch failed: ${reason}`);
        return;
      }
      const fetchedAt = this.#now();
      const result = this.#gate.fetchSucceeded(current.provider, body, fetchedAt);
      switch (result.outcome) {
        case 'next':
          this.#log.debug(`portcullis: provider ${current.provider}: discovery found the key set at ${result.fetch.url}`);
          current = result.fetch;
          continue;
        case 'stored':
          this.#log.info(`portcullis: provider ${current.provider}: fetched ${result.keys} keys`);
          for (const reason of result.skipped) {
            this.#log.warn(`portcullis: provider ${current.provider}: ${reason}`);
          }
          await this.#persist(current.provider, body, fetchedAt);
          return;
        case 'failed':
          this.#log.warn(`portcullis: provider ${current.provider}: key set fetch failed: ${result.reason}`);
          return;
        default:
          return;
      }
    }
  }

  /** GETs one URL within the fetch's timeout and size limit; only status 200 counts. */
  async #get({ kind, url, timeoutMs, maxBytes }) {
    const server = SERVER[kind];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await this.#fetch(url, {
        method: 'GET',
        headers: { accept: ACCEPT[kind], 'user-agent': 'portcullis' },
        // A redirect is reported as a failure, as in the Envoy filter, so the configured URL
        // is the only place keys come from.
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

  /** Copies a fetched key set to the Cache API for other isolates, for as long as it may serve. */
  async #persist(name, body, fetchedAt) {
    const provider = this.#providers.get(name);
    const cache = await this.#openCache();
    if (cache === null || provider === undefined) {
      return;
    }
    const maxAgeSeconds = Math.ceil((provider.cacheDurationMs + provider.staleIfErrorMs) / 1000);
    const response = new Response(body, {
      headers: {
        'content-type': 'application/json',
        'cache-control': `max-age=${maxAgeSeconds}`,
        [FETCHED_AT_HEADER]: String(fetchedAt),
      },
    });
    try {
      await cache.put(provider.url, response);
    } catch (error) {
      this.#log.warn(`portcullis: provider ${name}: could not store keys in the Cache API: ${error.message}`);
    }
  }
}
