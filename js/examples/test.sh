#!/usr/bin/env bash
# Installs, builds and tests the example apps. It runs `npm ci` in each example whose lock
# file changed since its last install and builds the React and Angular apps for production.
# Then it runs the API tests, the Playwright end-to-end tests and the README snippet check
# with node --test. Needs pkg/ (`make pkg`).
# Usage: js/examples/test.sh
set -euo pipefail

examples="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$examples/../.." && pwd)"

log() { printf 'examples: %s\n' "$*" >&2; }

if [[ ! -f "$root/pkg/package.json" ]]; then
  log "pkg/package.json is missing: build the package first with 'make pkg'"
  exit 1
fi

# js/ contains the test authorization server (oidc-provider), and the tests need Chromium.
"$root/.ci/install.sh" npm chromium

# npm ci rewrites node_modules even when nothing changed, which takes about 30 s for the
# Angular CLI. It is skipped while node_modules is newer than the lock file.
for directory in "$examples" "$examples/react" "$examples/angular"; do
  if [[ ! -f "$directory/node_modules/.package-lock.json" \
    || "$directory/package-lock.json" -nt "$directory/node_modules/.package-lock.json" ]]; then
    log "npm ci in ${directory#"$root"/}"
    (cd "$directory" && npm ci --no-audit --no-fund)
  fi
done

# The two apps hold identical copies of the sign-in code.
if ! cmp -s "$examples/react/src/auth.ts" "$examples/angular/src/app/auth.ts"; then
  log "react/src/auth.ts and angular/src/app/auth.ts differ: copy the changed one over the other"
  exit 1
fi

log "building the React app"
(cd "$examples/react" && npm run build)
log "building the Angular app"
(cd "$examples/angular" && NG_CLI_ANALYTICS=false npm run build)

log "running the API, end-to-end and README snippet tests"
cd "$examples"
node --test api.test.mjs e2e.test.mjs readme.test.mjs
