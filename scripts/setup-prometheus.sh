#!/usr/bin/env bash
# Debian's `prometheus` package (the server and promtool), for scripts/prometheus-check.sh,
# which runs a private server against brokers and checks the dashboard's and the alert rules'
# expressions. Installed without recommends (no node exporter); the package's own service is
# not used. Idempotent and instant when present.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'setup-prometheus: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/process.sh
source scripts/lib/process.sh

if dpkg -s prometheus >/dev/null 2>&1 && command -v promtool >/dev/null; then
    exit 0
fi
log "installing prometheus (server and promtool)"
apt_install --no-install-recommends prometheus
