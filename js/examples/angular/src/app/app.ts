import { JsonPipe } from '@angular/common';
import { Component, inject, signal } from '@angular/core';
import { AuthorizationResponseError } from 'portcullis';

import { APP_CONFIG } from './app-config';
import { type ApiResult, callApi, completeSignIn, forgeSignature, isCallback, startSignIn } from './auth';
import { TokenInspector } from './token-inspector';

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

@Component({
  selector: 'app-root',
  template: `
    <main>
      <h1>portcullis · Angular</h1>

      @switch (session().status) {
        @case ('signed-out') {
          <button id="sign-in" type="button" (click)="signIn()">Sign in</button>
        }
        @case ('completing') {
          <p>Signing in…</p>
        }
        @case ('failed') {
          <p id="error" role="alert">Sign-in failed: {{ failure() }}</p>
          <button id="sign-in" type="button" (click)="signIn()">Sign in again</button>
        }
      }

      @if (accessToken(); as token) {
        <app-token-inspector [accessToken]="token" />

        <section aria-labelledby="api-title">
          <h2 id="api-title">API</h2>
          <button id="call-api" type="button" (click)="request(token)">Call the API</button>
          <button id="call-api-forged" type="button" (click)="request(forge(token))">
            Call with a forged signature
          </button>
          @if (apiResult(); as result) {
            <div id="api-result">
              <p>HTTP <span id="api-status">{{ result.status }}</span></p>
              @if (result.challenge !== null) {
                <p>WWW-Authenticate: <code id="api-challenge">{{ result.challenge }}</code></p>
              }
              <pre id="api-body">{{ result.body | json }}</pre>
            </div>
          }
        </section>
      }
    </main>
  `,
  imports: [JsonPipe, TokenInspector],
})
export class App {
  private readonly config = inject(APP_CONFIG);

  protected readonly session = signal<Session>(isCallback() ? { status: 'completing' } : { status: 'signed-out' });
  protected readonly apiResult = signal<ApiResult | null>(null);

  constructor() {
    if (isCallback()) {
      completeSignIn(this.config)
        .then((accessToken) => this.session.set({ status: 'signed-in', accessToken }))
        .catch((error: unknown) => this.session.set({ status: 'failed', message: describeError(error) }))
        // The code in the address bar is used up either way.
        .finally(() => window.history.replaceState(null, '', '/'));
    }
  }

  protected accessToken(): string | null {
    const session = this.session();
    return session.status === 'signed-in' ? session.accessToken : null;
  }

  protected failure(): string {
    const session = this.session();
    return session.status === 'failed' ? session.message : '';
  }

  protected signIn(): void {
    startSignIn(this.config).catch((error: unknown) =>
      this.session.set({ status: 'failed', message: describeError(error) }),
    );
  }

  protected forge(accessToken: string): string {
    return forgeSignature(accessToken);
  }

  protected request(accessToken: string): void {
    this.apiResult.set(null);
    callApi(this.config, accessToken)
      .then((result) => this.apiResult.set(result))
      .catch((error: unknown) => this.apiResult.set({ status: 0, challenge: null, body: describeError(error) }));
  }
}
