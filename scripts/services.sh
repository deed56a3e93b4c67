#!/usr/bin/env bash
# The real services the persistence tests need, private to this work tree:
#
#   scripts/services.sh up [postgres|tansu|redis|redis-tls|redis-cluster|redis-cluster-tls|
#                           redis-sentinel|redis-sentinel-tls]...
#                               start what is not running (installs what is missing), write the
#                               env file; without names, all but redis-sentinel (only its
#                               failover test needs it, and starts it: ~7 s cold, 5 processes)
#                               and redis-cluster-tls, redis-sentinel-tls (only their TLS tests)
#   scripts/services.sh restart redis
#                               stop redis by PID and start it again on the same port (the
#                               cluster tests' Redis-restart case); starts it if it was down
#   scripts/services.sh down    stop what `up` started, by the PIDs it recorded
#   scripts/services.sh status  say what runs, and print the env file
#
# - PostgreSQL 15: a private cluster (initdb into .run/services/postgres/data) on a free port of
#   127.0.0.1, trust auth for the bootstrap superuser `stompbox`. Tuned for tests (fsync off):
#   a test cluster, never a production one (docs/persistence.md has the production settings).
#   TLS on as well (ssl=on, the server leaf of scripts/test-certs.sh, for localhost/127.0.0.1):
#   plain and TLS connections on the same port; the role `alice` may log in only over TLS with
#   the client certificate CN=alice (pg_hba `cert`), for the sslcert/sslkey test.
# - tansu: a Kafka-API broker (crates.io), in-memory storage, on a free port of 127.0.0.1. Built
#   with SQLite storage too, for the test that kills its own tansu (install_tansu).
# - Redis 7 (Debian redis-server): a private instance on a free port of 127.0.0.1, no persistence
#   (no RDB, no AOF: cluster state in Redis is soft state, rebuilt by the nodes after a restart).
# - redis-cluster: a Redis Cluster, 3 primaries + 3 replicas (scripts/lib/redis-cluster.sh);
#   STOMPBOX_REDIS_CLUSTER_URL (redis-cluster://seed,seed,...) and STOMPBOX_REDIS_CLUSTER_DIR
#   (n1..n6/{pid,port}: the primary-kill test finds a primary's pid there).
# - redis-sentinel: one Redis primary + 1 replica watched by 3 Redis Sentinels
#   (scripts/lib/redis-sentinel.sh); STOMPBOX_REDIS_SENTINEL_URL (redis+sentinel://s,s,s/stompbox)
#   and STOMPBOX_REDIS_SENTINEL_DIR (d1,d2,s1..s3/{pid,port}: the primary-kill test finds the
#   primary's pid there).
# - redis-cluster-tls: a TLS-only Redis Cluster, 3 primaries and no replica, the cluster bus and
#   replication over TLS too, the same test PKI (scripts/lib/redis-cluster.sh);
#   STOMPBOX_REDIS_CLUSTER_TLS_URL (rediss-cluster://seed,...; --redis-ca $STOMPBOX_TEST_CERTS/ca.pem).
# - redis-sentinel-tls: the same as redis-sentinel, TLS only (data nodes and sentinels, the
#   replication and the sentinels' own links over TLS), the same test PKI;
#   STOMPBOX_REDIS_SENTINEL_TLS_URL (rediss+sentinel://s,s,s/stompbox) and
#   STOMPBOX_REDIS_SENTINEL_TLS_DIR.
# - redis-tls: a second, TLS-only Redis (--port 0 --tls-port), the same test PKI, no client
#   certificates required; only the TLS tests use it, so it never shares channels with them.
#
# The env file (.run/services.env, or $STOMPBOX_SERVICES_ENV) holds STOMPBOX_POSTGRES_URL,
# STOMPBOX_KAFKA_BROKERS and STOMPBOX_REDIS_URL; the tests read it. `up` is idempotent and fast when all is up.
# For the TLS tests also STOMPBOX_POSTGRES_TLS_URL (sslmode=verify-full with sslrootcert),
# STOMPBOX_REDIS_TLS_URL (rediss://) and STOMPBOX_TEST_CERTS (the test PKI's directory).
# As root, postgres runs as the `postgres` user (it refuses to run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir="$PWD"

run_dir="${STOMPBOX_RUN_DIR:-$root_dir/.run/services}"
env_file="${STOMPBOX_SERVICES_ENV:-$root_dir/.run/services.env}"
pg_bin="${STOMPBOX_PG_BIN:-/usr/lib/postgresql/15/bin}"
pg_dir="$run_dir/postgres"
tansu_dir="$run_dir/tansu"
redis_dir="$run_dir/redis"
redis_tls_dir="$run_dir/redis-tls"
certs_dir="${STOMPBOX_CERTS_DIR:-$root_dir/.run/certs}"
# Why 30 s: a cold initdb plus first start takes ~3 s here; tansu listens in under 1 s.
ready_timeout=30

log() { printf 'services: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/process.sh
source "$root_dir/scripts/lib/process.sh"
# shellcheck source=scripts/lib/redis-cluster.sh
source "$root_dir/scripts/lib/redis-cluster.sh"
# shellcheck source=scripts/lib/redis-sentinel.sh
source "$root_dir/scripts/lib/redis-sentinel.sh"

# Runs a postgres tool as a non-root user when we are root.
as_pg() {
    if (( EUID == 0 )); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# ---- PostgreSQL -------------------------------------------------------------------------------

install_postgres() {
    [[ -x "$pg_bin/initdb" ]] && return
    log "installing PostgreSQL 15 (apt package postgresql)"
    apt_install postgresql
    # The Debian package starts its own cluster on 5432; ours is private and needs none.
    if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster 15 main stop 2>/dev/null || true
    fi
}

postgres_pid() { read_pid "$pg_dir/data/postmaster.pid"; }

# The test PKI (idempotent: regenerated only when missing or about to expire).
test_certs() { "$root_dir/scripts/test-certs.sh" "$certs_dir" >/dev/null; }

# Copies the server certificate into the data directory (postgres must own its key, mode
# 0600), and lets only alice's client certificate log in as `alice`. Prints `changed` when a
# running server must reload to see it.
postgres_tls_files() {
    local data="$pg_dir/data" changed=0 pair from to
    test_certs
    for pair in "server.pem:server.crt" "server-key.pem:server.key" "ca.pem:root.crt"; do
        from="$certs_dir/${pair%%:*}"
        to="$data/${pair##*:}"
        if ! cmp -s "$from" "$to"; then
            cp "$from" "$to"
            chmod 600 "$to"
            if (( EUID == 0 )); then chown postgres: "$to"; fi
            changed=1
        fi
    done
    # First match wins: alice over TCP needs TLS and her certificate (CN=alice).
    if ! grep -q '^hostssl all alice ' "$data/pg_hba.conf"; then
        { echo "hostssl all alice 127.0.0.1/32 cert"
            echo "host all alice 0.0.0.0/0 reject"
            cat "$data/pg_hba.conf"; } >"$data/pg_hba.conf.new"
        mv "$data/pg_hba.conf.new" "$data/pg_hba.conf"
        if (( EUID == 0 )); then chown postgres: "$data/pg_hba.conf"; fi
        changed=1
    fi
    if (( changed )); then echo changed; fi
}

postgres_up() {
    install_postgres
    mkdir -p "$pg_dir"
    if (( EUID == 0 )); then
        chown postgres: "$pg_dir"
    fi
    if [[ ! -f "$pg_dir/data/PG_VERSION" ]]; then
        log "initdb $pg_dir/data"
        rm -rf "$pg_dir/data"
        as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U stompbox --auth=trust -E UTF8 --no-locale \
            >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; exit 1; }
    fi
    local pid port tls_changed
    tls_changed="$(postgres_tls_files)"
    pid="$(postgres_pid)"
    port="$(cat "$pg_dir/port" 2>/dev/null || true)"
    if alive "$pid" && [[ -n "$port" ]] && as_pg "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        if [[ -f "$pg_dir/tls" ]]; then
            if [[ -n "$tls_changed" ]]; then
                log "postgres: new certificates or pg_hba, reloading"
                as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" reload >/dev/null
            fi
            return
        fi
        # Started by an older services.sh, without TLS: restart it with TLS.
        postgres_down
    fi
    port="$(free_port)"
    echo "$port" >"$pg_dir/port"
    log "starting postgres on 127.0.0.1:$port"
    # Test-only settings: fsync/synchronous_commit/full_page_writes off trade crash safety of the
    # *machine* for speed; a killed postgres process still recovers from its WAL.
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t "$ready_timeout" \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $pg_dir -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
            -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key \
            -c ssl_ca_file=root.crt" start \
        >/dev/null || { tail -n 30 "$pg_dir/postgres.log" >&2; exit 1; }
    postgres_pid >"$pg_dir/pid"
    touch "$pg_dir/tls"
}

postgres_down() {
    local pid
    pid="$(postgres_pid)"
    if alive "$pid"; then
        log "stopping postgres (pid $pid)"
        # SIGINT is postgres' "fast" shutdown: abort sessions, checkpoint, exit.
        kill -INT "$pid"
        for _ in $(seq 1 $((ready_timeout * 10))); do
            alive "$pid" || break
            sleep 0.1
        done
    fi
    rm -f "$pg_dir/pid" "$pg_dir/tls"
}

# ---- tansu (Kafka API) ------------------------------------------------------------------------

tansu_bin() {
    if [[ -n "${STOMPBOX_TANSU_BIN:-}" ]]; then
        echo "$STOMPBOX_TANSU_BIN"
    elif command -v tansu >/dev/null; then
        command -v tansu
    else
        echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
    fi
}

# The storage engines one tansu binary must have: dynostore (memory://, the services' tansu)
# and libsql (sqlite://, the durable tansu the Kafka-broker crash test starts on its own,
# clients/node/test/durable-tansu.mjs). Not `postgres`: tansu 0.6.0's PostgreSQL engine needs a
# schema the crate does not ship (docs/persistence.md, "tansu findings"), and it costs 16 more
# crates to build.
tansu_features="dynostore,libsql"

# A marker next to the binary (<bin>.features, comma-separated) records the features it was
# built with: a binary whose marker names every feature above is kept (a wider build, e.g. with
# postgres, too); one without a marker (installed by an older services.sh, dynostore only) or
# missing a feature is rebuilt once, then never again. An explicit STOMPBOX_TANSU_BIN is the
# caller's choice and is never reinstalled.
tansu_has_features() {
    local bin=$1 marker feature
    [[ -x "$bin" && -r "$bin.features" ]] || return 1
    marker=",$(tr -d '[:space:]' <"$bin.features"),"
    for feature in ${tansu_features//,/ }; do
        [[ $marker == *",$feature,"* ]] || return 1
    done
}

install_tansu() {
    local bin
    bin="$(tansu_bin)"
    if [[ -n "${STOMPBOX_TANSU_BIN:-}" ]] || tansu_has_features "$bin"; then
        return
    fi
    # One install at a time per binary: checkouts running `up` together (parallel suites,
    # worktrees) would each start their own cold build of the same binary. The second waits
    # for the first, then finds the marker and builds nothing.
    mkdir -p "$(dirname "$bin")"
    exec {tansu_lock}>"$bin.install-lock"
    flock "$tansu_lock"
    if ! tansu_has_features "$bin"; then
        log "installing tansu (cargo install tansu --locked --features $tansu_features; cold: 20-50 min on a loaded 2-core machine)"
        # --root: over the binary found (…/bin/tansu), so the marked binary is the one run.
        cargo install tansu --locked --force --features "$tansu_features" --root "$(dirname "$(dirname "$bin")")"
        echo "$tansu_features" >"$bin.features"
    fi
    exec {tansu_lock}>&-
}

tansu_up() {
    # Running already: nothing to install (a test's `services.sh up tansu` must never start a
    # cold cargo install of its own; the first `up`, before any test, does that).
    recorded_running "$tansu_dir" && return
    install_tansu
    local port
    port="$(free_port)"
    log "starting tansu on 127.0.0.1:$port (memory storage)"
    spawn_listening tansu "$tansu_dir" "$port" "$(tansu_bin)" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "memory://tansu/"
}

tansu_down() { stop_recorded tansu "$tansu_dir"; }

# ---- Redis ------------------------------------------------------------------------------------

install_redis() {
    command -v redis-server >/dev/null && return
    log "installing Redis (apt package redis-server)"
    apt_install redis-server
}

# Starts redis-server on $1, or on a free port without one.
redis_start() {
    local port=${1:-$(free_port)}
    mkdir -p "$redis_dir"
    log "starting redis on 127.0.0.1:$port (no persistence)"
    # --save "" and --appendonly no: nothing is written to disk, so a restart starts empty,
    # as a crashed cache would; the nodes must rebuild their state (subscriptions, presence).
    spawn_listening redis "$redis_dir" "$port" redis-server \
        --bind 127.0.0.1 --port "$port" --dir "$redis_dir" \
        --save "" --appendonly no --daemonize no --protected-mode yes \
        --maxclients 10000 --logfile ""
}

redis_up() {
    install_redis
    recorded_running "$redis_dir" && return
    redis_start
}

redis_down() { stop_recorded redis "$redis_dir"; }

# The TLS flags of every TLS-only Redis here (redis-tls, the TLS cluster and Sentinel), one a
# line: the server leaf of the test PKI (localhost, 127.0.0.1), no client certificate asked of
# clients; alice's client leaf for a server's own outgoing connections (a replica's link, a
# sentinel's, the cluster bus, which asks for one whatever `tls-auth-clients` says).
redis_tls_flags() {
    printf '%s\n' --tls-cert-file "$certs_dir/server.pem" --tls-key-file "$certs_dir/server-key.pem" \
        --tls-client-cert-file "$certs_dir/client-alice.pem" \
        --tls-client-key-file "$certs_dir/client-alice-key.pem" \
        --tls-ca-cert-file "$certs_dir/ca.pem" --tls-auth-clients no
}

# redis_cli_for TLS ARGS...: redis-cli, over TLS (checking the test CA) when TLS is 1.
redis_cli_for() {
    local tls=$1
    shift
    if (( tls )); then
        redis-cli --tls --cacert "$certs_dir/ca.pem" "$@"
    else
        redis-cli "$@"
    fi
}

# TLS only (--port 0): a plain client reaches nothing but a TLS handshake here.
redis_tls_up() {
    install_redis
    test_certs
    recorded_running "$redis_tls_dir" && return
    local port
    port="$(free_port)"
    mkdir -p "$redis_tls_dir"
    log "starting redis-tls on 127.0.0.1:$port (TLS only, no persistence)"
    local tls
    mapfile -t tls < <(redis_tls_flags)
    spawn_listening redis-tls "$redis_tls_dir" "$port" redis-server \
        --bind 127.0.0.1 --port 0 --tls-port "$port" --dir "$redis_tls_dir" "${tls[@]}" \
        --save "" --appendonly no --daemonize no --protected-mode yes \
        --maxclients 10000 --logfile ""
}

redis_tls_down() { stop_recorded redis-tls "$redis_tls_dir"; }

# Same port, so the URL the nodes hold stays right: they must come back on their own.
redis_restart() {
    install_redis
    local port
    port="$(cat "$redis_dir/port" 2>/dev/null || true)"
    redis_down
    redis_start "$port"
}

# ---- commands ---------------------------------------------------------------------------------

# Only the services that run are written, so a test needing the other one skips (or fails).
write_env() {
    mkdir -p "$(dirname "$env_file")"
    local tmp="$env_file.tmp"
    {
        echo "# written by scripts/services.sh up; removed by down"
        if alive "$(postgres_pid)"; then
            echo "STOMPBOX_POSTGRES_URL=postgres://stompbox@127.0.0.1:$(cat "$pg_dir/port")/postgres"
            echo "STOMPBOX_POSTGRES_TLS_URL=postgres://stompbox@localhost:$(cat "$pg_dir/port")/postgres?sslmode=verify-full&sslrootcert=$certs_dir/ca.pem"
        fi
        if alive "$(read_pid "$tansu_dir/pid")"; then
            echo "STOMPBOX_KAFKA_BROKERS=127.0.0.1:$(cat "$tansu_dir/port")"
        fi
        if alive "$(read_pid "$redis_dir/pid")"; then
            echo "STOMPBOX_REDIS_URL=redis://127.0.0.1:$(cat "$redis_dir/port")/"
        fi
        if redis_cluster_running; then
            echo "STOMPBOX_REDIS_CLUSTER_URL=$(redis_cluster_url)"
            echo "STOMPBOX_REDIS_CLUSTER_DIR=$redis_cluster_dir"
        fi
        if redis_cluster_tls redis_cluster_running; then
            echo "STOMPBOX_REDIS_CLUSTER_TLS_URL=$(redis_cluster_tls redis_cluster_url)"
        fi
        if redis_sentinel_running; then
            echo "STOMPBOX_REDIS_SENTINEL_URL=$(redis_sentinel_url)"
            echo "STOMPBOX_REDIS_SENTINEL_DIR=$redis_sentinel_dir"
        fi
        if redis_sentinel_tls redis_sentinel_running; then
            echo "STOMPBOX_REDIS_SENTINEL_TLS_URL=$(redis_sentinel_tls redis_sentinel_url)"
            echo "STOMPBOX_REDIS_SENTINEL_TLS_DIR=$run_dir/redis-sentinel-tls"
        fi
        if alive "$(read_pid "$redis_tls_dir/pid")"; then
            echo "STOMPBOX_REDIS_TLS_URL=rediss://localhost:$(cat "$redis_tls_dir/port")/"
        fi
        if [[ -s "$certs_dir/ca.pem" ]]; then
            echo "STOMPBOX_TEST_CERTS=$certs_dir"
        fi
    } >"$tmp"
    mv "$tmp" "$env_file"
}

status() {
    local pid
    pid="$(postgres_pid)"
    if alive "$pid"; then echo "postgres: up (pid $pid, port $(cat "$pg_dir/port"))"; else echo "postgres: down"; fi
    pid="$(read_pid "$tansu_dir/pid")"
    if alive "$pid"; then echo "tansu: up (pid $pid, port $(cat "$tansu_dir/port"))"; else echo "tansu: down"; fi
    pid="$(read_pid "$redis_dir/pid")"
    if alive "$pid"; then echo "redis: up (pid $pid, port $(cat "$redis_dir/port"))"; else echo "redis: down"; fi
    pid="$(read_pid "$redis_tls_dir/pid")"
    if alive "$pid"; then echo "redis-tls: up (pid $pid, TLS port $(cat "$redis_tls_dir/port"))"; else echo "redis-tls: down"; fi
    redis_cluster_status
    redis_cluster_tls redis_cluster_status
    redis_sentinel_status
    redis_sentinel_tls redis_sentinel_status
    if [[ -f "$env_file" ]]; then echo "env file $env_file:"; cat "$env_file"; fi
}

case "${1:-}" in
up)
    shift
    (( $# == 0 )) && set -- postgres tansu redis redis-tls redis-cluster
    for service in "$@"; do
        case "$service" in
        postgres) postgres_up ;;
        tansu) tansu_up ;;
        redis) redis_up ;;
        redis-tls) redis_tls_up ;;
        redis-cluster) redis_cluster_up ;;
        redis-cluster-tls) redis_cluster_tls redis_cluster_up ;;
        redis-sentinel) redis_sentinel_up ;;
        redis-sentinel-tls) redis_sentinel_tls redis_sentinel_up ;;
        *) echo "unknown service: $service" >&2; exit 2 ;;
        esac
    done
    write_env
    status
    ;;
restart)
    [[ "${2:-}" == redis ]] || { echo "usage: $0 restart redis" >&2; exit 2; }
    redis_restart
    write_env
    status
    ;;
down)
    redis_sentinel_tls redis_sentinel_down
    redis_sentinel_down
    redis_cluster_tls redis_cluster_down
    redis_cluster_down
    redis_tls_down
    redis_down
    tansu_down
    postgres_down
    rm -f "$env_file"
    ;;
status)
    status
    ;;
*)
    echo "usage: $0 up [service...]|restart redis|down|status" >&2
    exit 2
    ;;
esac
