import { exportJWK, generateKeyPair } from 'jose';

/**
 * Generates the default signing keys of the test authorization server: one RS256 key (RSA 2048)
 * and one ES256 key (P-256), returned as private JWKs with `kid`, `alg` and `use: "sig"`.
 *
 * The `kid` values carry today's UTC date (`rs-2026-12-04-1`, `es-2026-12-04-1`), so keys made on
 * the same day by different calls share a `kid`. Pass a different `suffix` to tell them apart.
 *
 * The result can be handed to several `startAuthorizationServer` calls so that two issuers sign
 * with the same keys.
 *
 * @param {{ suffix?: string | number }} [options]
 * @returns {Promise<import('jose').JWK[]>}
 */
export async function generateSigningKeys({ suffix = 1 } = {}) {
  const date = new Date().toISOString().slice(0, 10);

  const rsa = await generatePrivateJwk('RS256', `rs-${date}-${suffix}`);
  const ec = await generatePrivateJwk('ES256', `es-${date}-${suffix}`);

  return [rsa, ec];
}

async function generatePrivateJwk(alg, kid) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);

  return { ...jwk, kid, alg, use: 'sig' };
}
