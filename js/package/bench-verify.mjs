// Times verifyToken of the built package (Node.js build) for RS256, ES256 and EdDSA tokens.
// Usage: node js/package/bench-verify.mjs [PKG_DIR] [ITERATIONS]
// Prints one JSON line per algorithm: microseconds per verification (median of 5 runs).

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { generateKeyPair, exportJWK, SignJWT } from 'jose';

const pkgDir = process.argv[2] ? pathToFileURL(`${resolve(process.argv[2])}/`) : new URL('../../pkg/', import.meta.url);
const iterations = Number(process.argv[3] ?? 200);
const { verifyToken } = await import(new URL('dist/node/verify.js', pkgDir));

const now = Math.floor(Date.now() / 1000);
for (const [alg, options] of [['RS256', { modulusLength: 2048 }], ['ES256', {}], ['EdDSA', { crv: 'Ed25519' }]]) {
  const { publicKey, privateKey } = await generateKeyPair(alg, options);
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg, use: 'sig' };
  const token = await new SignJWT({ scope: 'api:read' })
    .setProtectedHeader({ alg, kid: 'bench' })
    .setIssuer('https://issuer.example')
    .setAudience('https://api.example')
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey);
  const jwks = JSON.stringify({ keys: [jwk] });
  const policy = JSON.stringify({ issuer: 'https://issuer.example', audiences: ['https://api.example'], algorithms: [alg] });
  verifyToken(token, jwks, policy, now);

  const runs = [];
  for (let run = 0; run < 5; run += 1) {
    const start = process.hrtime.bigint();
    for (let index = 0; index < iterations; index += 1) {
      verifyToken(token, jwks, policy, now);
    }
    runs.push(Number(process.hrtime.bigint() - start) / 1000 / iterations);
  }
  runs.sort((a, b) => a - b);
  console.log(JSON.stringify({ alg, microsecondsPerVerification: Math.round(runs[2]), iterations }));
}
