import { useEffect, useState } from 'react';
import { AuthorizationResponseError } from 'portcullis';

import {
  type ApiResult,
  type AppConfig,
  callApi,
  completeSignIn,
  forgeSignature,
  isCallback,
  startSignIn,
} from './auth';
import { TokenInspector } from './TokenInspector';

type Session =
  | { status: 'signed-out' }
  | { status: 'completing' }
  | { status: 'signed-in'; accessToken: string }
  | { status: 'failed'; message: string };

function describeError(error: unknown): string {
  if (error instanceof AuthorizationResponseError) {
    return `${error.code}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

// StrictMode runs effects twice in development; the callback must be handled once, because
// the code and the stored verifier can be used only once.
let callbackHandling: Promise<string> | null = null;

export function App({ config }: { config: AppConfig }) {
  const [session, setSession] = useState<Session>(() =>
    isCallback() ? { status: 'completing' } : { status: 'signed-out' },
  );
  const [apiResult, setApiResult] = useState<ApiResult | null>(null);

  useEffect(() => {
    if (!isCallback()) {
      return;
    }
    callbackHandling ??= completeSignIn(config);
    callbackHandling
      .then((accessToken) => setSession({ status: 'signed-in', accessToken }))
      .catch((error: unknown) => setSession({ status: 'failed', message: describeError(error) }))
      // The code in the address bar is used up either way.
      .finally(() => window.history.replaceState(null, '', '/'));
  }, [config]);

  const signIn = () => {
    startSignIn(config).catch((error: unknown) => setSession({ status: 'failed', message: describeError(error) }));
  };

  const request = (accessToken: string) => {
    setApiResult(null);
    callApi(config, accessToken)
      .then(setApiResult)
      .catch((error: unknown) => setApiResult({ status: 0, challenge: null, body: describeError(error) }));
  };

  return (
    <main>
      <h1>portcullis · React</h1>

      {session.status === 'signed-out' && (
        <button id="sign-in" type="button" onClick={signIn}>
          Sign in
        </button>
      )}
      {session.status === 'completing' && <p>Signing in…</p>}
      {session.status === 'failed' && (
        <>
          <p id="error" role="alert">
            Sign-in failed: {session.message}
          </p>
          <button id="sign-in" type="button" onClick={signIn}>
            Sign in again
          </button>
        </>
      )}

      {session.status === 'signed-in' && (
        <>
          <TokenInspector accessToken={session.accessToken} />

          <section aria-labelledby="api-title">
            <h2 id="api-title">API</h2>
            <button id="call-api" type="button" onClick={() => request(session.accessToken)}>
              Call the API
            </button>
            <button id="call-api-forged" type="button" onClick={() => request(forgeSignature(session.accessToken))}>
              Call with a forged signature
            </button>
            {apiResult !== null && (
              <div id="api-result">
                <p>
                  HTTP <span id="api-status">{apiResult.status}</span>
                </p>
                {apiResult.challenge !== null && (
                  <p>
                    WWW-Authenticate: <code id="api-challenge">{apiResult.challenge}</code>
                  </p>
                )}
                <pre id="api-body">{JSON.stringify(apiResult.body, null, 2)}</pre>
              </div>
            )}
          </section>
        </>
      )}
    </main>
  );
}
