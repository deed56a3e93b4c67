#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: `./scripts/test.sh`.
#
# Order goes from cheapest to dearest so a mistake fails fast: format, module layering and file
# size, lint, build the broker, Rust tests (unit, conformance, fuzz-corpus replay), then the
# third-party client suites, which start their own brokers from the binary built here. Stops at
# the first failing section.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
section() {
    printf '\n==== %s ====\n' "$*"
}
stop_services=0
finish() {
    local status=$?
    # Stop what this run started (set STOMPBOX_KEEP_SERVICES=1 to keep them up between runs).
    if (( stop_services )) && [[ "${STOMPBOX_KEEP_SERVICES:-0}" != 1 ]]; then
        ./scripts/services.sh down >/dev/null 2>&1 || true
    fi
    if (( status != 0 )); then
        printf "\n==== FAILED (exit %d) after %ds ====\n" "$status" "$((SECONDS - started))"
    fi
}
trap finish EXIT

section "build prerequisites (scripts/setup-build.sh: OpenSSL headers for librdkafka)"
./scripts/setup-build.sh

section "cargo fmt --check"
cargo fmt --all -- --check

# No import cycles between the modules of the broker, the stores, the sink and the codec; nothing
# but the broker's wiring depends on cluster/; no non-test source file over 600 lines (issue 11).
# The script proves itself on a fake crate first so it cannot pass by finding nothing.
section "module layering and file size (scripts/check-modules.py)"
python3 scripts/check-modules.py --selftest
python3 scripts/check-modules.py --report --all-crates --wiring-only cluster

section "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

# A broker with only the embedded store: builds clean, and links neither PostgreSQL nor Kafka
# clients (the stores behind stompbox's default features `postgres` and `kafka`).
section "stompbox --no-default-features: clippy, and no rdkafka/tokio-postgres in its tree"
cargo clippy -p stompbox --no-default-features -- -D warnings
if cargo tree -p stompbox --no-default-features -e normal | grep -E "rdkafka|tokio-postgres"; then
    echo "the embedded-only build of stompbox links the crates above" >&2
    exit 1
fi

section "cargo build -p stompbox -p persistence-sink -p examples -p push-testbed"
cargo build -p stompbox -p persistence-sink -p examples -p push-testbed

# Every suite (conformance tests included) starts brokers from this binary unless the caller
# points elsewhere, so no test builds its own.
if [[ -z "${STOMPBOX_BIN:-}" ]]; then
    target_dir="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    export STOMPBOX_BIN="$target_dir/debug/stompbox"
fi
if [[ ! -x "$STOMPBOX_BIN" ]]; then
    echo "broker binary not found: $STOMPBOX_BIN" >&2
    exit 1
fi

section "services: PostgreSQL, tansu, Redis, Redis Cluster (scripts/services.sh)"
stop_services=1
./scripts/services.sh up
export STOMPBOX_REQUIRE_SERVICES=1

section "cargo test --workspace"
cargo test --workspace
section "bench smoke"; cargo run -q -p stompbox-bench -- smoke
python3 scripts/bench_gate.py --selftest

section "python client suite (stomp.py over TCP)"
./scripts/setup-python.sh
# test_cluster_sync.py runs nodes with skewed wall clocks through libfaketime (LD_PRELOAD).
./scripts/setup-faketime.sh
# pytest exits 5 when it collected nothing; under `set -e` that already fails, which is what we
# want: an empty suite is a broken suite, not a green one.
(cd clients/python && ../../.venv/bin/python -m pytest)

# The chat contract is the same in every deployment: the chat suites again, unchanged, in the
# other modes of clients/python/deployment.py (the run above was the embedded one): PostgreSQL,
# Kafka -> stompbox-sink -> PostgreSQL, 3 nodes on Redis + PostgreSQL, 3 nodes on Redis + Kafka
# + the sink + PostgreSQL; the modes in parallel, each with its own brokers and stores.
section "python chat suite in every deployment mode (scripts/chat-matrix.sh)"
./scripts/chat-matrix.sh
# A primary of the services' Redis Cluster SIGKILLed mid-chat (failover, nothing acknowledged lost).
section "Redis Cluster primary failover under chat (rcluster mode)"
(cd clients/python && STOMPBOX_TEST_MODE=rcluster ../../.venv/bin/python -m pytest -q tests/test_rcluster_failover.py)
# Nodes on a TLS-only Redis Cluster (rediss-cluster:// + --redis-ca): cross-node chat; a node
# with another CA refuses to start, there and on TLS-only Sentinel (rediss+sentinel://).
section "Redis Cluster and Sentinel over TLS (rediss-cluster://, rediss+sentinel://)"
./scripts/services.sh up redis-cluster-tls redis-sentinel-tls >/dev/null
(cd clients/python && STOMPBOX_TEST_MODE=cluster ../../.venv/bin/python -m pytest -q tests/test_redis_tls.py)
# The Redis primary behind Sentinel SIGKILLed mid-chat (3 nodes on redis+sentinel://: the
# sentinels promote the replica, the nodes re-resolve; nothing acknowledged lost).
section "Redis Sentinel primary failover under chat (redis+sentinel://, and rediss+sentinel:// for the kill)"
./scripts/services.sh up redis-sentinel redis-sentinel-tls >/dev/null
(cd clients/python && STOMPBOX_TEST_MODE=cluster ../../.venv/bin/python -m pytest -q tests/test_sentinel_failover.py)

# The Grafana dashboard and the alert rules (deploy/) against a private Prometheus scraping a
# broker on Kafka with its sink and a 3-node cluster under traffic (well under a minute).
section "Prometheus: dashboard and alert rule expressions (scripts/prometheus-check.sh)"
./scripts/prometheus-check.sh

# The cluster files (cluster-*.test.mjs) start 3 nodes behind nginx (scripts/cluster.sh) on the
# Redis and PostgreSQL above; each is bounded to under 2 minutes. Among them the Kafka-mode
# crash tests: cluster-sink-kill (the sink SIGKILLed twice) and cluster-tansu-kill (the Kafka
# broker SIGKILLed; it starts a tansu of its own on SQLite storage, which is why services.sh
# installs tansu with the libsql feature).
section "node client suite (@stomp/stompjs over WebSocket, cluster failure tests)"
./scripts/setup-node.sh
shopt -s nullglob
node_tests=(clients/node/test/*.test.mjs)
if (( ${#node_tests[@]} == 0 )); then
    echo "no node test files under clients/node/test/" >&2
    exit 1
fi
(cd clients/node && node --test --test-concurrency=1 --test-timeout=120000 "${node_tests[@]#clients/node/}")
# The node failover test again, its nodes on the Redis Cluster of scripts/services.sh.
section "node failover test on Redis Cluster (STOMPBOX_CLUSTER_REDIS=cluster)"
(cd clients/node && STOMPBOX_CLUSTER_REDIS=cluster node --test --test-concurrency=1 --test-timeout=120000 \
    --test-name-pattern='presence follows$' test/cluster-failover.test.mjs)
section "node chat suite on Kafka -> stompbox-sink -> PostgreSQL (STOMPBOX_TEST_STORAGE=streamed)"
(cd clients/node && STOMPBOX_TEST_STORAGE=streamed node --test --test-concurrency=1 --test-timeout=120000 test/chat.test.mjs)

# Spring's own STOMP client (DefaultStompSession over TCP) from Debian's Spring 4.3 and JDK.
section "Spring STOMP client suite (clients/java, scripts/java-test.sh)"
./scripts/java-test.sh

# The chat page (examples/web, served with --web-root) in Debian's headless Chromium: two users,
# ticks, typing, presence, scroll-back, a broker restart with sync (SCREENSHOTS_DIR=docs/images
# refreshes the README's screenshots).
section "browser suite (examples/web in headless Chromium, clients/browser)"
./scripts/setup-chromium.sh
./scripts/setup-web.sh
(cd clients/browser && node --test --test-concurrency=1 --test-timeout=60000 test/*.test.mjs)

section "all passed in $((SECONDS - started))s"
