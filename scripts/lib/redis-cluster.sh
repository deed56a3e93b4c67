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
# The caller defines `log`, `run_dir`, `ready_timeout`, and sources scripts/lib/process.sh.

redis_cluster_dir="$run_dir/redis-cluster"
redis_cluster_nodes=6

redis_cluster_node_up() {
    local dir=$1 port bus
    recorded_running "$dir" && return
    port="$(cat "$dir/port" 2>/dev/null || free_port)"
    bus="$(cat "$dir/bus-port" 2>/dev/null || free_port)"
    echo "$bus" >"$dir/bus-port"
    spawn_listening redis-cluster "$dir" "$port" redis-server \
        --bind 127.0.0.1 --port "$port" --dir "$dir" \
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
        redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
        [[ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | grep -v fail | grep -c connected)" \
            == "$redis_cluster_nodes" ]] || return 1
    done
}

redis_cluster_up() {
    install_redis
    local i
    for i in $(seq 1 "$redis_cluster_nodes"); do
        mkdir -p "$redis_cluster_dir/n$i"
        redis_cluster_node_up "$redis_cluster_dir/n$i"
    done
    if [[ ! -f "$redis_cluster_dir/created" ]]; then
        local seeds=()
        for port in $(redis_cluster_ports); do seeds+=("127.0.0.1:$port"); done
        log "creating redis cluster (3 primaries, 3 replicas) on ${seeds[*]}"
        redis-cli --cluster create "${seeds[@]}" --cluster-replicas 1 --cluster-yes \
            >"$redis_cluster_dir/create.log" 2>&1 \
            || { cat "$redis_cluster_dir/create.log" >&2; exit 1; }
        touch "$redis_cluster_dir/created"
    fi
    for _ in $(seq 1 $((ready_timeout * 10))); do
        redis_cluster_ok && return
        sleep 0.1
    done
    log "redis cluster not ok after ${ready_timeout}s"
    redis-cli -p "$(redis_cluster_ports | head -n1)" cluster nodes >&2 || true
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
        [[ -d "$redis_cluster_dir/n$i" ]] && stop_recorded "redis-cluster n$i" "$redis_cluster_dir/n$i"
    done
    rm -rf "$redis_cluster_dir"
}

# The seeds, as the broker's --redis-url takes them.
redis_cluster_url() {
    local url="redis-cluster://" sep="" port
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
                echo "redis-cluster n$i: up (pid $pid, port $(cat "$redis_cluster_dir/n$i/port"))"
            else
                echo "redis-cluster n$i: down"
            fi
        done
    else
        echo "redis-cluster: down"
    fi
}
