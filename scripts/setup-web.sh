#!/usr/bin/env bash
# Installs the browser suite's npm packages (clients/browser: puppeteer-core, @stomp/stompjs,
# sockjs-client; `npm ci`, exactly its package-lock.json) and copies the two libraries the chat
# page loads into examples/web/vendor/ (git-ignored): no CDN, no bundler, versions pinned by the
# lock file. Idempotent: npm runs only when the lock file changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=clients/browser
stamp=$pkg/node_modules/.package-lock.sha256
want="$(sha256sum $pkg/package-lock.json | cut -d' ' -f1)"
if [[ -d $pkg/node_modules && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "setup-web: $pkg/node_modules up to date"
else
    echo "setup-web: npm ci in $pkg"
    (cd $pkg && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
fi

vendor=examples/web/vendor
rm -rf "$vendor"
mkdir -p "$vendor/stompjs"
# The ES-module build of stompjs, as the page imports it (`./vendor/stompjs/index.js`).
cp $pkg/node_modules/@stomp/stompjs/esm6/*.js "$vendor/stompjs/"
mkdir -p "$vendor/stompjs/compatibility"
cp $pkg/node_modules/@stomp/stompjs/esm6/compatibility/*.js "$vendor/stompjs/compatibility/"
# sockjs-client as a plain script (sets window.SockJS), loaded only for the fallback.
cp $pkg/node_modules/sockjs-client/dist/sockjs.min.js "$vendor/"
echo "setup-web: $vendor ready"
