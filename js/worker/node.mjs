// Runs a Workers-style module (`{ fetch(request, env, ctx) }`) behind a node:http server, for
// platforms other than Cloudflare Workers. Each incoming request becomes a fetch `Request`,
// the handler's `Response` is written back, and `ctx.waitUntil` promises are awaited before
// the server closes.
//
// Usage: node js/worker/node.mjs   (reads the bindings from the environment; see README.md)

import { once } from 'node:events';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';

/** Request headers Node's fetch refuses or that describe the incoming connection only. */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'expect', 'proxy-connection']);

/** Converts a node:http request to a fetch `Request`. */
function toRequest(incoming, scheme) {
  const authority = incoming.headers.host ?? 'localhost';
  const url = new URL(incoming.url ?? '/', `${scheme}://${authority}`);
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index].toLowerCase();
    if (!CONNECTION_HEADERS.has(name)) {
      headers.append(name, raw[index + 1]);
    }
  }
  const init = { method: incoming.method, headers };
  if (incoming.method !== 'GET' && incoming.method !== 'HEAD') {
    init.body = Readable.toWeb(incoming);
    init.duplex = 'half';
  }
  return new Request(url, init);
}

/** Writes a fetch `Response` to a node:http response. */
async function writeResponse(response, outgoing) {
  const headers = {};
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') {
      headers[name] = value;
    }
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) {
    headers['set-cookie'] = cookies;
  }
  // Node's fetch has already decoded the body, so its length and encoding no longer apply.
  delete headers['content-length'];
  delete headers['content-encoding'];
  delete headers['transfer-encoding'];
  outgoing.writeHead(response.status, headers);
  if (response.body === null) {
    outgoing.end();
    return;
  }
  await pipeline(Readable.fromWeb(response.body), outgoing);
}

/**
 * Serves `worker` on `host:port`.
 *
 * @param {object} options
 * @param {{ fetch: (request: Request, env: object, ctx: object) => Promise<Response> }} options.worker
 * @param {object} options.env the bindings passed to every request
 * @param {number} [options.port=0] 0 picks a free port
 * @param {string} [options.host='127.0.0.1']
 * @param {'http' | 'https'} [options.scheme='http'] the scheme of request URLs; set `https`
 *   behind a proxy that terminates TLS
 * @param {{ error: Function }} [options.log=console]
 * @returns {Promise<{ port: number, url: string, close: () => Promise<void> }>}
 */
export async function serve({ worker, env, port = 0, host = '127.0.0.1', scheme = 'http', log = console }) {
  const background = new Set();
  const ctx = {
    waitUntil(promise) {
      const tracked = Promise.resolve(promise).catch((error) => log.error(`portcullis: a background task failed: ${error.message}`));
      background.add(tracked);
      tracked.finally(() => background.delete(tracked));
    },
    passThroughOnException() {},
  };
  const server = createServer(async (incoming, outgoing) => {
    try {
      const response = await worker.fetch(toRequest(incoming, scheme), env, ctx);
      await writeResponse(response, outgoing);
    } catch (error) {
      log.error(`portcullis: the request failed: ${error.stack ?? error}`);
      if (!outgoing.headersSent) {
        outgoing.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      }
      outgoing.end('portcullis_internal_error\n');
    }
  });
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address();
  let closing;
  return {
    port: address.port,
    url: `${scheme}://${host}:${address.port}`,
    close() {
      closing ??= (async () => {
        server.close();
        server.closeAllConnections();
        await once(server, 'close');
        await Promise.all(background);
      })();
      return closing;
    },
  };
}

/** Reads the bindings from environment variables of the same names. */
function envFromProcess() {
  const env = {};
  for (const name of ['PORTCULLIS_POLICY', 'ORIGIN_URL', 'PORTCULLIS_LOG_LEVEL']) {
    if (process.env[name] !== undefined) {
      env[name] = process.env[name];
    }
  }
  return env;
}

/**
 * Builds the gate once from the PORTCULLIS_POLICY binding. The worker reads the policy
 * only when the first request arrives, so without this check an invalid or missing
 * policy would show only as status 500 on every request.
 */
async function checkPolicy(env) {
  if (env.PORTCULLIS_POLICY === undefined || env.PORTCULLIS_POLICY === '') {
    throw new Error('the PORTCULLIS_POLICY environment variable is missing: set it to the gate configuration JSON');
  }
  const { Gate } = await import('portcullis/gate');
  new Gate(env.PORTCULLIS_POLICY).free();
}

async function main() {
  const { default: worker } = await import('./worker.mjs');
  const env = envFromProcess();
  try {
    await checkPolicy(env);
  } catch (error) {
    console.error(`portcullis: invalid policy: ${error.message}`);
    process.exit(1);
  }
  const port = Number(process.env.PORT ?? 8787);
  const host = process.env.HOST ?? '127.0.0.1';
  const server = await serve({ worker, env, port, host, scheme: process.env.SCHEME ?? 'http' });
  console.error(`portcullis: listening on ${server.url}`);
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
      console.error(`portcullis: ${signal} received, stopping`);
      server.close().then(() => console.error('portcullis: stopped'));
    });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(`portcullis: could not start: ${error.stack ?? error}`);
    process.exit(1);
  });
}
