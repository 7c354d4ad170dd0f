// Generates the private test keys in keys.json, once. The keys are committed as data so
// that every run and every language's test suite signs with the same keys.
//
// Usage: node tests/vectors/generate-keys.mjs [--force]
//
// Needs Node.js 20 (node:crypto) and the `openssl` command, which makes the self-signed
// certificates behind the `x5c` and `x5t` fixtures. Without --force an existing keys.json
// is kept, because regenerating it invalidates nothing in Rust but changes every token the
// JS suite may have recorded.

import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const output = join(dirname(fileURLToPath(import.meta.url)), 'keys.json');
if (existsSync(output) && !process.argv.includes('--force')) {
  console.error(`${output} exists; pass --force to replace every key`);
  process.exit(1);
}

function rsa(bits, publicExponent = 65537) {
  return generateKeyPairSync('rsa', { modulusLength: bits, publicExponent });
}

function ec(namedCurve) {
  return generateKeyPairSync('ec', { namedCurve });
}

// name: [description, kid, key pair or oct length in bytes]
const specs = {
  K_RSA_A: ['RSA 2048, e=65537: the legitimate issuer key', 'rsa-a', () => rsa(2048)],
  K_RSA_B: ['RSA 2048, e=65537: the second issuer key, for rotation', 'rsa-b', () => rsa(2048)],
  K_RSA_C: ['RSA 2048, e=65537: published only as an encryption key (use "enc")', 'rsa-c', () => rsa(2048)],
  K_EC_A: ['P-256: the legitimate issuer EC key', 'ec-a', () => ec('P-256')],
  K_ATK_RSA: ['RSA 2048: attacker key, never in a trusted key set', 'att-1', () => rsa(2048)],
  K_ATK_EC: ['P-256: attacker key, never in a trusted key set', 'att-1', () => ec('P-256')],
  K_HS: ['32 random bytes: HMAC secret for HS256', 'hs-1', 32],
  K_HS_512: ['64 random bytes: HMAC secret long enough for HS256, HS384 and HS512', 'hs-512', 64],
  K_ED25519: ['Ed25519 (OKP)', 'ed-1', () => generateKeyPairSync('ed25519')],
  K_P384: ['P-384', 'ec-384', () => ec('P-384')],
  K_P521: ['P-521', 'ec-521', () => ec('P-521')],
  K_SECP256K1: ['secp256k1, for ES256K', 'k-1', () => ec('secp256k1')],
  K_RSA_3072: ['RSA 3072, e=65537', 'rsa-3072', () => rsa(3072)],
  K_RSA_4096: ['RSA 4096, e=65537', 'rsa-4096', () => rsa(4096)],
  K_RSA_E3: ['RSA 2048 with public exponent 3', 'rsa-e3', () => rsa(2048, 3)],
  K_RSA_E35: ['RSA 2048 with public exponent 35 (JWK "e":"Iw")', 'rsa-e35', () => rsa(2048, 35)],
  K_RSA_1024: ['RSA 1024: too short, must be refused on import', 'rsa-1024', () => rsa(1024)],
};

const keys = {};
const pairs = {};
for (const [name, [description, kid, make]] of Object.entries(specs)) {
  let jwk;
  if (typeof make === 'number') {
    jwk = { kty: 'oct', k: randomBytes(make).toString('base64url') };
  } else {
    const pair = make();
    pairs[name] = pair;
    jwk = pair.privateKey.export({ format: 'jwk' });
  }
  keys[name] = { description, jwk: { kid, ...jwk } };
}

// A self-signed certificate per RSA issuer key, for `x5c` chains and `x5t` thumbprints.
function certificate(name, subject) {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-keys-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.der');
    writeFileSync(keyFile, pairs[name].privateKey.export({ type: 'pkcs8', format: 'pem' }));
    execFileSync('openssl', [
      'req', '-x509', '-new', '-key', keyFile, '-subj', subject, '-days', '36500',
      '-sha256', '-set_serial', '1', '-outform', 'DER', '-out', certFile,
    ]);
    const der = readFileSync(certFile);
    return {
      subject,
      x5c: [der.toString('base64')],
      x5t: createHash('sha1').update(der).digest('base64url'),
      'x5t#S256': createHash('sha256').update(der).digest('base64url'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// RFC 4253 §6.6 `ssh-rsa` public key line: string "ssh-rsa", mpint e, mpint n.
function openssh(jwk) {
  const field = (bytes) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const mpint = (b64) => {
    const bytes = Buffer.from(b64, 'base64url');
    return field(bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
  };
  const blob = Buffer.concat([field(Buffer.from('ssh-rsa')), mpint(jwk.e), mpint(jwk.n)]);
  return `ssh-rsa ${blob.toString('base64')}`;
}

const certificates = {
  K_RSA_A: certificate('K_RSA_A', '/CN=idp.example.com'),
  K_ATK_RSA: certificate('K_ATK_RSA', '/CN=attacker.example'),
};

const publicA = pairs.K_RSA_A.publicKey;
const keyForms = {
  K_RSA_A: {
    description: 'the public key of K_RSA_A in the byte forms an HS256 key-confusion attacker tries as the HMAC secret',
    spki_pem: publicA.export({ type: 'spki', format: 'pem' }),
    spki_der: publicA.export({ type: 'spki', format: 'der' }).toString('base64'),
    pkcs1_pem: publicA.export({ type: 'pkcs1', format: 'pem' }),
    openssh: openssh(keys.K_RSA_A.jwk),
  },
};

const document = {
  description: 'Private test keys. Never use them outside tests: they are public.',
  generated_by: `tests/vectors/generate-keys.mjs, Node.js ${process.version} node:crypto generateKeyPairSync (OpenSSL ${process.versions.openssl}); certificates by \`openssl req -x509\`; oct secrets from crypto.randomBytes`,
  generated_at: new Date().toISOString().slice(0, 10),
  keys,
  certificates,
  key_forms: keyForms,
};
writeFileSync(output, `${JSON.stringify(document, null, 2)}\n`);
console.log(`wrote ${Object.keys(keys).length} keys to ${output}`);
