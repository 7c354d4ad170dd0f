import { useEffect, useMemo, useState } from 'react';
import { expiresIn, inspectToken, isExpired } from 'portcullis';

// Tokens with less validity left than this are shown as due for a refresh.
const REFRESH_MARGIN_SECONDS = 60;

function formatDuration(seconds: number): string {
  const sign = seconds < 0 ? '-' : '';
  const absolute = Math.abs(seconds);
  const minutes = Math.floor(absolute / 60);
  return `${sign}${minutes}:${String(absolute % 60).padStart(2, '0')}`;
}

function formatTime(seconds: number | null): string {
  return seconds === null ? '—' : new Date(seconds * 1000).toISOString();
}

/**
 * Shows a token decoded WITHOUT verification: header, claims, scopes, and a countdown to
 * `exp`. Only the API decides whether the token is valid.
 */
export function TokenInspector({ accessToken }: { accessToken: string }) {
  const token = useMemo(() => inspectToken(accessToken), [accessToken]);
  const [now, setNow] = useState(() => Math.floor(Date.now() / 1000));

  useEffect(() => {
    const timer = window.setInterval(() => setNow(Math.floor(Date.now() / 1000)), 1000);
    return () => window.clearInterval(timer);
  }, []);

  const secondsLeft = expiresIn(accessToken, now);
  const refreshDue = isExpired(accessToken, { now, minValidity: REFRESH_MARGIN_SECONDS });

  return (
    <section className="inspector" aria-labelledby="inspector-title">
      <h2 id="inspector-title">Access token</h2>
      <p className="note">Decoded in the browser without verification. The API verifies it.</p>

      <dl className="facts">
        <dt>Subject</dt>
        <dd id="subject">{String(token.claims.sub ?? '—')}</dd>
        <dt>Scopes</dt>
        <dd id="scopes">
          {token.scopes.map((scope) => (
            <code key={scope}>{scope}</code>
          ))}
        </dd>
        <dt>Issued at</dt>
        <dd>{formatTime(token.issuedAt)}</dd>
        <dt>Expires at</dt>
        <dd>{formatTime(token.expiresAt)}</dd>
        <dt>Expires in</dt>
        <dd id="expires-in" data-seconds={secondsLeft ?? ''}>
          {secondsLeft === null ? 'never (no exp)' : formatDuration(secondsLeft)}
          {refreshDue && <span className="badge">refresh due</span>}
        </dd>
      </dl>

      <h3>Header</h3>
      <pre id="token-header">{JSON.stringify(token.header, null, 2)}</pre>
      <h3>Claims</h3>
      <pre id="token-claims">{JSON.stringify(token.claims, null, 2)}</pre>
    </section>
  );
}
