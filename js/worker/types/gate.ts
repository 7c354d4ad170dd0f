// Compile-only tests of the declarations of `portcullis/gate` (js/package/gate.d.ts).

import { Gate, TokenError } from 'portcullis/gate';
import type { Decision, FetchDue, FetchOutcome, GateConfig, KeyStatus, ProviderInfo } from 'portcullis/gate';

const config: GateConfig = {
  providers: {
    idp: {
      issuer: 'https://idp.example.com/',
      audiences: ['api://example-api'],
      algorithms: ['RS256', 'ES256'],
      remote_jwks: { http_uri: { uri: 'https://idp.example.com/jwks', timeout: '2s' }, stale_if_error: '1h' },
      claim_to_headers: [{ header_name: 'x-jwt-sub', claim_name: 'sub' }],
    },
  },
  rules: [{ match: { prefix: '/public' } }, { match: { prefix: '/' }, requires: { provider_name: 'idp' } }],
  failure: { json_body: true },
};

const gate = new Gate(config);
new Gate('{"providers":{}}');
const providers: readonly ProviderInfo[] = gate.providers;
for (const provider of providers) {
  if (provider.keys === 'remote') {
    const timeout: number = provider.pendingTimeoutMs;
  }
}

const due: FetchDue[] = gate.fetchesDue(Date.now());
for (const fetch of due) {
  const outcome: FetchOutcome = gate.fetchSucceeded(fetch.id, new Uint8Array(), Date.now());
  if (outcome.outcome === 'next') {
    const url: string = outcome.fetch.url;
  } else if (outcome.outcome === 'stored' && 'keys' in outcome) {
    const count: number = outcome.keys;
  }
  const reported: boolean = gate.fetchFailed(fetch.id, 'timed out', Date.now());
}
const adopted: boolean = gate.adoptKeys('idp', '{"keys":[]}', Date.now());
const status: KeyStatus = gate.keyStatus('idp', Date.now());
const fetchedAt: number | null = status.fetchedAtMs;

const decision: Decision = gate.decide({ method: 'GET', url: new URL('https://api.example.com/'), headers: new Headers() }, Date.now());
switch (decision.action) {
  case 'allow': {
    const pairs: readonly (readonly [string, string])[] = decision.setHeaders;
    break;
  }
  case 'deny': {
    const status: 400 | 401 | 403 | 500 = decision.status;
    const code: string = decision.code;
    break;
  }
  case 'pending': {
    const names: readonly string[] = decision.providers;
    break;
  }
}
gate.decide({ method: 'GET', url: 'https://api.example.com/', headers: { authorization: 'Bearer x' } }, 0, true);

try {
  gate.free();
} catch (error) {
  if (error instanceof TokenError) {
    const code: string = error.code;
  }
}

// @ts-expect-error algorithms is required
const missingAlgorithms: GateConfig = { providers: { idp: { issuer: 'x' } } };
// @ts-expect-error the time is a number of milliseconds
gate.fetchesDue(new Date());
// @ts-expect-error a request needs its URL
gate.decide({ method: 'GET' }, 0);
