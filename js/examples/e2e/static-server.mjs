/**
 * A static file server on 127.0.0.1 for the production build of an example app.
 *
 * It serves `/config.json` from memory, so a test can point a built app at servers on ports
 * picked at run time. For a path without a file extension that names no file, it serves
 * `index.html`, as single-page apps expect for their `/callback` route.
 */

import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve as resolvePath, sep } from 'node:path';

// `WebAssembly.instantiateStreaming` and `compileStreaming` accept only `application/wasm`.
const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Starts serving `root` on 127.0.0.1.
 *
 * @param {string} root directory of the production build, containing `index.html`
 * @param {{ port?: number }} [options] port 0 (the default) picks a free one
 * @returns {Promise<{ origin: string, port: number, requests: string[],
 *   setConfig: (config: object) => void, close: () => Promise<void> }>} `requests` lists
 *   the path of every request in order
 */
export async function startStaticServer(root, { port = 0 } = {}) {
  const rootDirectory = resolvePath(root);
  const requests = [];
  let config = null;

  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    requests.push(pathname);
    serve(rootDirectory, pathname, config, req, res).catch((error) => {
      console.error(`static server: ${req.method} ${pathname} failed`, error);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      }
      res.end('internal error\n');
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const actualPort = server.address().port;

  let closing;
  return {
    origin: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    requests,
    setConfig(value) {
      config = value;
    },
    close() {
      closing ??= new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function serve(root, pathname, config, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end(`method ${req.method} is not allowed\n`);
    return;
  }

  if (pathname === '/config.json' && config !== null) {
    send(res, req, 200, CONTENT_TYPES['.json'], Buffer.from(JSON.stringify(config)));
    return;
  }

  const file = await findFile(root, pathname);
  if (file === null) {
    // An asset path that names no file is a broken build, not a route of the app.
    if (extname(pathname) !== '') {
      send(res, req, 404, CONTENT_TYPES['.txt'], Buffer.from(`${pathname} not found\n`));
      return;
    }
    const index = await readFile(join(root, 'index.html'));
    send(res, req, 200, CONTENT_TYPES['.html'], index);
    return;
  }

  const type = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
  send(res, req, 200, type, await readFile(file));
}

async function findFile(root, pathname) {
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const candidate = normalize(join(root, decoded));
  if (candidate !== root && !candidate.startsWith(root + sep)) {
    return null;
  }
  const info = await stat(candidate).catch(() => null);
  return info?.isFile() ? candidate : null;
}

function send(res, req, status, contentType, body) {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': body.length,
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
