import { JsonPipe } from '@angular/common';
import { Component, DestroyRef, computed, inject, input, signal } from '@angular/core';
import { expiresIn, inspectToken, isExpired } from 'portcullis';

// Tokens with less validity left than this are shown as due for a refresh.
const REFRESH_MARGIN_SECONDS = 60;

function currentSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Shows a token decoded WITHOUT verification: header, claims, scopes, and a countdown to
 * `exp`. Only the API decides whether the token is valid.
 */
@Component({
  selector: 'app-token-inspector',
  template: `
    <section class="inspector" aria-labelledby="inspector-title">
      <h2 id="inspector-title">Access token</h2>
      <p class="note">Decoded in the browser without verification. The API verifies it.</p>

      <dl class="facts">
        <dt>Subject</dt>
        <dd id="subject">{{ token().claims.sub ?? '—' }}</dd>
        <dt>Scopes</dt>
        <dd id="scopes">
          @for (scope of token().scopes; track scope) {
            <code>{{ scope }}</code>
          }
        </dd>
        <dt>Issued at</dt>
        <dd>{{ formatTime(token().issuedAt) }}</dd>
        <dt>Expires at</dt>
        <dd>{{ formatTime(token().expiresAt) }}</dd>
        <dt>Expires in</dt>
        <dd id="expires-in" [attr.data-seconds]="secondsLeft() ?? ''">
          {{ secondsLeft() === null ? 'never (no exp)' : formatDuration(secondsLeft()!) }}
          @if (refreshDue()) {
            <span class="badge">refresh due</span>
          }
        </dd>
      </dl>

      <h3>Header</h3>
      <pre id="token-header">{{ token().header | json }}</pre>
      <h3>Claims</h3>
      <pre id="token-claims">{{ token().claims | json }}</pre>
    </section>
  `,
  imports: [JsonPipe],
})
export class TokenInspector {
  readonly accessToken = input.required<string>();

  protected readonly token = computed(() => inspectToken(this.accessToken()));
  private readonly now = signal(currentSeconds());
  protected readonly secondsLeft = computed(() => expiresIn(this.accessToken(), this.now()));
  protected readonly refreshDue = computed(() =>
    isExpired(this.accessToken(), { now: this.now(), minValidity: REFRESH_MARGIN_SECONDS }),
  );

  constructor() {
    const timer = setInterval(() => this.now.set(currentSeconds()), 1000);
    inject(DestroyRef).onDestroy(() => clearInterval(timer));
  }

  protected formatDuration(seconds: number): string {
    const sign = seconds < 0 ? '-' : '';
    const absolute = Math.abs(seconds);
    const minutes = Math.floor(absolute / 60);
    return `${sign}${minutes}:${String(absolute % 60).padStart(2, '0')}`;
  }

  protected formatTime(seconds: number | null): string {
    return seconds === null ? '—' : new Date(seconds * 1000).toISOString();
  }
}
