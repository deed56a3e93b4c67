#!/usr/bin/env bash
# What building the workspace needs beyond Rust: librdkafka (bundled, built by rdkafka-sys with
# its own configure) links the system's OpenSSL for Kafka over TLS (rdkafka's `ssl` feature,
# docs/security/services-tls.md), found through pkg-config. Installs the Debian packages
# libssl-dev and pkg-config when missing; and the openssl command, which scripts/test-certs.sh
# uses to make the test PKI of the TLS tests. Idempotent and instant when present.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'setup-build: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/process.sh
source scripts/lib/process.sh

if ! command -v openssl >/dev/null; then
    log "installing openssl (the test PKI, scripts/test-certs.sh)"
    apt_install openssl
fi
if command -v pkg-config >/dev/null && pkg-config --exists openssl; then
    exit 0
fi
log "installing libssl-dev and pkg-config (OpenSSL for librdkafka's TLS)"
apt_install libssl-dev pkg-config
