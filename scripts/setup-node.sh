#!/usr/bin/env bash
# Installs the pinned @stomp/stompjs suite dependencies into clients/node/node_modules with
# `npm ci` (exactly package-lock.json). Idempotent: skipped when the lock file's hash matches the
# stamp written after the last successful install.
set -euo pipefail
cd "$(dirname "$0")/../clients/node"

stamp=node_modules/.package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -d node_modules && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "setup-node: node_modules up to date"
    exit 0
fi

echo "setup-node: npm ci in clients/node"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
