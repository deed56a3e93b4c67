# Sourced by scripts/services.sh: a real Redis Cluster of 3 primaries and 3 replicas (Debian
# redis-server, >= 7 for sharded pub/sub), private to this work tree, under
# $run_dir/redis-cluster/n1..n6. Each node records its pid, client port and bus port; the
# cluster's shape is kept in each node's nodes.conf, so `up` after a node died (the primary-kill
# test SIGKILLs one) starts that node again on its ports and it rejoins as a replica.
#
# Why explicit bus ports (`cluster-port`): the default bus port is client port + 10000, which
# for a free ephemeral port is often above 65535 or taken.
# Why cluster-node-timeout 2000: a killed primary is failed over in ~2-4 s (the default 15 s
# would make the failure test mostly waiting); replica-validity-factor 0 lets any replica take
# over however stale (soft state only: no persistence, as for the single Redis).
#
# The TLS variant (`redis_cluster_tls redis_cluster_up`, and so on): 3 primaries and no replica
# (enough for a TLS test, and cheap) under $run_dir/redis-cluster-tls, TLS only (`port 0`,
# `tls-port`), the cluster bus and replication over TLS too (`tls-cluster`, `tls-replication`),
# with the test PKI of scripts/test-certs.sh (services.sh's redis_tls_flags).
# The caller defines `log`, `run_dir`, `ready_timeout`, `certs_dir`, `test_certs`,
# `redis_tls_flags`, `redis_cli_for`, and sources scripts/lib/process.sh.

redis_cluster_dir="$run_dir/redis-cluster"
redis_cluster_nodes=6
redis_cluster_tls=0

# redis_cluster_tls CMD...: runs one of the functions below on the TLS cluster (bash's dynamic
# scope: the locals are what the functions it calls see).
redis_cluster_tls() {
    local redis_cluster_dir="$run_dir/redis-cluster-tls" redis_cluster_nodes=3 redis_cluster_tls=1
    "$@"
}

# The server flags of this variant: TLS ones (services.sh's redis_tls_flags), or none.
redis_cluster_tls_flags() {
    (( redis_cluster_tls )) || return 0
    redis_tls_flags
    printf '%s\n' --tls-cluster yes --tls-replication yes
}

redis_cluster_cli() { redis_cli_for "$redis_cluster_tls" "$@"; }

redis_cluster_node_up() {
    local dir=$1 port bus
    recorded_running "$dir" && return
    port="$(cat "$dir/port" 2>/dev/null || free_port)"
    bus="$(cat "$dir/bus-port" 2>/dev/null || free_port)"
    echo "$bus" >"$dir/bus-port"
    local listen=(--port "$port") tls
    mapfile -t tls < <(redis_cluster_tls_flags)
    if (( redis_cluster_tls )); then listen=(--port 0 --tls-port "$port" "${tls[@]}"); fi
    spawn_listening redis-cluster "$dir" "$port" redis-server \
        --bind 127.0.0.1 "${listen[@]}" --dir "$dir" \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$bus" \
        --cluster-node-timeout 2000 --cluster-replica-validity-factor 0 \
        --cluster-announce-ip 127.0.0.1 \
        --save "" --appendonly no --daemonize no --protected-mode yes \
        --maxclients 10000 --logfile ""
}

redis_cluster_ports() {
    local i
    for i in $(seq 1 "$redis_cluster_nodes"); do
        cat "$redis_cluster_dir/n$i/port"
    done
}

# cluster_state:ok on every node, and every node sees 3 primaries with a replica each
# (a restarted node first reports ok before it has resynced its view of the others).
redis_cluster_ok() {
    local port
    for port in $(redis_cluster_ports); do
        redis_cluster_cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
        [[ "$(redis_cluster_cli -p "$port" cluster nodes 2>/dev/null | grep -v fail | grep -c connected)" \
            == "$redis_cluster_nodes" ]] || return 1
    done
}

redis_cluster_up() {
    install_redis
    (( redis_cluster_tls )) && test_certs
    local i
    for i in $(seq 1 "$redis_cluster_nodes"); do
        mkdir -p "$redis_cluster_dir/n$i"
        redis_cluster_node_up "$redis_cluster_dir/n$i"
    done
    if [[ ! -f "$redis_cluster_dir/created" ]]; then
        local seeds=()
        for port in $(redis_cluster_ports); do seeds+=("127.0.0.1:$port"); done
        local replicas=$(( redis_cluster_nodes / 3 - 1 ))
        log "creating redis cluster (3 primaries, $replicas replica each) on ${seeds[*]}"
        redis_cluster_cli --cluster create "${seeds[@]}" --cluster-replicas "$replicas" --cluster-yes \
            >"$redis_cluster_dir/create.log" 2>&1 \
            || { cat "$redis_cluster_dir/create.log" >&2; exit 1; }
        touch "$redis_cluster_dir/created"
    fi
    for _ in $(seq 1 $((ready_timeout * 10))); do
        redis_cluster_ok && return
        sleep 0.1
    done
    log "redis cluster not ok after ${ready_timeout}s"
    redis_cluster_cli -p "$(redis_cluster_ports | head -n1)" cluster nodes >&2 || true
    exit 1
}

redis_cluster_running() {
    [[ -f "$redis_cluster_dir/created" ]] || return 1
    local i
    for i in $(seq 1 "$redis_cluster_nodes"); do
        alive "$(read_pid "$redis_cluster_dir/n$i/pid")" && return
    done
    return 1
}

# Stopping every node forgets the cluster: the next `up` creates a fresh one (empty anyway).
redis_cluster_down() {
    [[ -d "$redis_cluster_dir" ]] || return 0
    local i
    for i in $(seq 1 "$redis_cluster_nodes"); do
        [[ -d "$redis_cluster_dir/n$i" ]] && stop_recorded "${redis_cluster_dir##*/} n$i" "$redis_cluster_dir/n$i"
    done
    rm -rf "$redis_cluster_dir"
}

# The seeds, as the broker's --redis-url takes them (with --redis-ca $certs_dir/ca.pem for TLS).
redis_cluster_url() {
    local url="redis-cluster://" sep="" port
    (( redis_cluster_tls )) && url="rediss-cluster://"
    for port in $(redis_cluster_ports); do
        url+="${sep}127.0.0.1:$port"
        sep=","
    done
    echo "$url"
}

redis_cluster_status() {
    if redis_cluster_running; then
        local i
        for i in $(seq 1 "$redis_cluster_nodes"); do
            local pid
            pid="$(read_pid "$redis_cluster_dir/n$i/pid")"
            if alive "$pid"; then
                echo "${redis_cluster_dir##*/} n$i: up (pid $pid, port $(cat "$redis_cluster_dir/n$i/port"))"
            else
                echo "${redis_cluster_dir##*/} n$i: down"
            fi
        done
    else
        echo "${redis_cluster_dir##*/}: down"
    fi
}
