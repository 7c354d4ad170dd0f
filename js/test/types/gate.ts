// Compile-only tests of the declarations of `portcullis/gate` (js/package/gate.d.ts).

import { Gate, TokenError } from 'portcullis/gate';
import type {
  Decision,
  DocumentFetch,
  FetchDue,
  FetchKind,
  FetchOutcome,
  GateConfig,
  IntrospectionFetch,
  KeySetFetchKind,
  KeyStatus,
  ProviderConfig,
  ProviderInfo,
} from 'portcullis/gate';

const endpoint = { uri: 'https://idp.example.com/oauth2/introspect', cluster: 'idp', timeout: '2s' };

const config: GateConfig = {
  providers: {
    idp: {
      issuer: 'https://idp.example.com/',
      algorithms: ['ES256'],
      remote_jwks: { http_uri: { uri: 'https://idp.example.com/jwks.json', cluster: 'idp' }, cache_duration: '10m' },
      dpop: {
        mode: 'allowed',
        algorithms: ['ES256', 'EdDSA'],
        max_age: 60,
        nonce: { enabled: true, lifetime: '5m', secret: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA' },
        origin: 'https://api.example.com',
      },
      revocation_list: {
        http_uri: { uri: 'https://idp.example.com/revoked.json', cluster: 'idp' },
        cache_duration: '60s',
        stale_if_error: '1h',
        pending_timeout: 2,
      },
    },
    checked: {
      algorithms: ['RS256'],
      local_jwks: { inline_string: '{"keys":[]}' },
      introspection: { http_uri: endpoint, client_id: 'gate', client_secret: 's3cret', mode: 'after_jwt', stale_if_error: 0 },
    },
    opaque: {
      issuer: 'https://idp.example.com/',
      introspection: { http_uri: endpoint, client_id: 'gate', client_secret: 's3cret', cache_duration: '60s' },
      dpop: { mode: 'required' },
    },
  },
  rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'idp' }, { provider_name: 'opaque' }] } } }],
};

// @ts-expect-error an introspection-only provider has no keys
const opaqueWithKeys: ProviderConfig = { algorithms: [], remote_jwks: {}, introspection: { http_uri: endpoint, client_id: 'gate', client_secret: 's', mode: 'only' } };
// @ts-expect-error introspection defaults to mode `only`, which takes no keys
const jwtWithoutMode: ProviderConfig = { algorithms: ['RS256'], remote_jwks: {}, introspection: { http_uri: endpoint, client_id: 'gate', client_secret: 's' } };
// @ts-expect-error an introspection answer has no JOSE header to check against the RFC 9068 profile
const opaqueProfile: ProviderConfig = { profile: 'rfc9068', introspection: { http_uri: endpoint, client_id: 'gate', client_secret: 's' } };
const opaqueEmpty: ProviderConfig = { algorithms: [], introspection: { http_uri: endpoint, client_id: 'gate', client_secret: 's', mode: 'only' } };
// @ts-expect-error a JWT provider lists its algorithms
const jwtWithoutAlgorithms: ProviderConfig = { remote_jwks: {}, introspection: { http_uri: endpoint, client_id: 'gate', client_secret: 's', mode: 'after_jwt' } };
// @ts-expect-error client credentials are required
const noSecret: ProviderConfig = { algorithms: [], introspection: { http_uri: endpoint, client_id: 'gate' } };
// @ts-expect-error DPoP proofs are signed with asymmetric algorithms only
const hmacProofs: ProviderConfig = { algorithms: ['RS256'], dpop: { algorithms: ['HS256'] } };
// @ts-expect-error DPoP modes are `allowed` and `required`
const optionalDpop: ProviderConfig = { algorithms: ['RS256'], dpop: { mode: 'optional' } };
// @ts-expect-error a revocation list needs its URL
const listWithoutUrl: ProviderConfig = { algorithms: ['RS256'], revocation_list: { cache_duration: '60s' } };

const gate = new Gate(config);
new Gate(JSON.stringify(config));

// Providers.
for (const info of gate.providers) {
  const name: string = info.name;
  const pendingTimeoutMs: number = info.pendingTimeoutMs;
  const listUrl: string | null = info.revocationListUrl;
  const introspectionUrl: string | null = info.introspectionUrl;
  const dpop: 'allowed' | 'required' | null = info.dpop;
  if (info.keys === 'remote') {
    const kind: KeySetFetchKind = info.kind;
    console.log(info.url, kind, info.cacheDurationMs, info.staleIfErrorMs);
  } else {
    const keys: 'local' | 'none' = info.keys;
    // @ts-expect-error only remote providers have a URL
    console.log(keys, info.url);
  }
  console.log(name, pendingTimeoutMs, listUrl, introspectionUrl, dpop);
}
// @ts-expect-error provider summaries are read-only
(gate.providers[0] as ProviderInfo).dpop = 'required';

// Fetches.
async function perform(due: FetchDue, nowMs: number): Promise<void> {
  const id: string = due.id;
  const kind: FetchKind = due.kind;
  const headers = new Headers();
  for (const [name, value] of due.headers) {
    headers.set(name, value);
  }

  // @ts-expect-error only introspection calls have a body
  const body: string = due.body;
  let response: Response;
  if (due.kind === 'introspection') {
    const call: IntrospectionFetch = due;
    const method: 'POST' = call.method;
    response = await fetch(call.url, { method, headers, body: call.body, signal: AbortSignal.timeout(call.timeoutMs) });
  } else {
    const document: DocumentFetch = due;
    const noBody: null = document.body;
    console.log(noBody);
    response = await fetch(document.url, { method: document.method, headers });
  }

  if (response.status !== 200) {
    const inFlight: boolean = gate.fetchFailed(id, `status ${response.status}`, nowMs);
    console.log(inFlight);
    return;
  }

  const outcome: FetchOutcome = gate.fetchSucceeded(id, new Uint8Array(await response.arrayBuffer()), nowMs);
  switch (outcome.outcome) {
    case 'stored':
      if ('keys' in outcome) {
        const skipped: readonly string[] = outcome.skipped;
        console.log(outcome.keys, skipped);
      } else if ('entries' in outcome) {
        const entries: number = outcome.entries;
        console.log(entries);
      } else {
        const active: boolean = outcome.active;
        console.log(active);
      }
      // @ts-expect-error only introspection answers report `active`
      console.log(outcome.active);
      break;
    case 'next':
      await perform(outcome.fetch, nowMs);
      break;
    case 'failed':
      console.log(outcome.reason);
      break;
    case 'ignored':
      break;
  }
  console.log(kind, body);
}

for (const due of gate.fetchesDue(Date.now())) {
  void perform(due, Date.now());
}
const adopted: boolean = gate.adoptKeys('idp#revocation_list', '{"revoked":[]}', Date.now());
gate.adoptKeys('idp', new ArrayBuffer(0), Date.now());
// @ts-expect-error fetchedAtMs is a number of milliseconds
gate.adoptKeys('idp', '{"keys":[]}', new Date());
const status: KeyStatus = gate.keyStatus('idp', Date.now());
console.log(adopted, status.state, status.lastError);

// Decisions.
const decision: Decision = gate.decide(
  { method: 'GET', url: new URL('https://api.example.com/orders'), headers: { authorization: 'DPoP token', dpop: 'proof' } },
  Date.now(),
  false,
);
switch (decision.action) {
  case 'allow': {
    const upstream = new Headers();
    for (const [name, value] of decision.setHeaders) {
      upstream.set(name, value);
    }
    const reply = new Response('ok');
    for (const [name, value] of decision.responseHeaders) {
      reply.headers.set(name, value);
    }
    console.log(decision.url, decision.providers, decision.warnings);
    break;
  }
  case 'deny':
    if (decision.code === 'token_revoked' || decision.code === 'token_inactive') {
      console.log(decision.status, decision.provider);
    } else if (decision.code === 'introspection_unavailable' || decision.code === 'revocation_list_unavailable') {
      console.log(decision.message);
    } else if (decision.code === 'dpop_nonce_required') {
      const nonce: string | undefined = decision.headers.find(([name]) => name === 'dpop-nonce')?.[1];
      console.log(nonce);
    }
    // @ts-expect-error not an error code
    if (decision.code === 'token_blocked') {
      console.log(decision.body);
    }
    break;
  case 'pending':
    console.log(decision.providers);
    break;
}

try {
  new Gate('{}');
} catch (error) {
  if (error instanceof TokenError && error.code === 'config_invalid') {
    console.log(error.message);
  }
}

console.log(opaqueWithKeys, jwtWithoutMode, opaqueProfile, opaqueEmpty, jwtWithoutAlgorithms, noSecret, hmacProofs, optionalDpop, listWithoutUrl);
