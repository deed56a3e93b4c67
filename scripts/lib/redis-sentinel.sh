# Sourced by scripts/services.sh: one Redis primary with one replica, watched by three Redis
# Sentinels (all Debian redis-server; a sentinel is `redis-server FILE.conf --sentinel`), private
# to this work tree, under $run_dir/redis-sentinel/{d1,d2} (data nodes) and s1..s3 (sentinels).
# Each records its pid and port; the monitored primary's name is `stompbox`.
#
# Why down-after-milliseconds 1000 and failover-timeout 3000: a killed primary is failed over
# in ~2-4 s here (the defaults, 30 s and 3 min, would make the failure test mostly waiting);
# quorum 2 of 3, as a production setup would have it. No persistence, as for the single Redis:
# cluster state in Redis is soft state.
#
# Restarting what died (`up` again): a sentinel starts from its own config file, which it
# rewrites with what it learnt (the current primary, the other sentinels); a data node starts
# as a replica of the primary the sentinels name now (the old primary comes back as a replica),
# or as a primary when they name it (it died before a failover; with no persistence it comes
# back empty and its replica resyncs empty: soft state only, as the broker expects).
# The caller defines `log`, `run_dir`, `ready_timeout`, and sources scripts/lib/process.sh.

redis_sentinel_dir="$run_dir/redis-sentinel"
redis_sentinel_name=stompbox

# The primary's port as the first sentinel that answers names it, or nothing.
redis_sentinel_primary_port() {
    local i port reply
    for i in 1 2 3; do
        port="$(cat "$redis_sentinel_dir/s$i/port" 2>/dev/null)" || continue
        reply="$(redis-cli -p "$port" SENTINEL get-master-addr-by-name "$redis_sentinel_name" 2>/dev/null \
            | sed -n 2p)"
        if [[ "$reply" =~ ^[0-9]+$ ]]; then
            echo "$reply"
            return
        fi
    done
}

# Starts data node $1 (d1, d2) if it is not running; $2: the port of the primary to replicate,
# or empty to start as a primary.
redis_sentinel_data_up() {
    local dir="$redis_sentinel_dir/$1" of=${2:-} port
    recorded_running "$dir" && return
    mkdir -p "$dir"
    port="$(cat "$dir/port" 2>/dev/null || free_port)"
    local replicaof=()
    if [[ -n "$of" && "$of" != "$port" ]]; then replicaof=(--replicaof 127.0.0.1 "$of"); fi
    spawn_listening "redis-sentinel-$1" "$dir" "$port" redis-server \
        --bind 127.0.0.1 --port "$port" --dir "$dir" "${replicaof[@]}" \
        --save "" --appendonly no --daemonize no --protected-mode yes \
        --maxclients 10000 --logfile ""
}

# Starts sentinel $1 (s1..s3) if it is not running; the first start writes its config file
# monitoring the primary on port $2.
redis_sentinel_sentinel_up() {
    local dir="$redis_sentinel_dir/$1" primary=$2 port conf
    recorded_running "$dir" && return
    mkdir -p "$dir"
    conf="$dir/sentinel.conf"
    if [[ ! -f "$conf" ]]; then
        port="$(free_port)"
        cat >"$conf" <<EOF
port $port
bind 127.0.0.1
dir $dir
daemonize no
logfile ""
sentinel monitor $redis_sentinel_name 127.0.0.1 $primary 2
sentinel down-after-milliseconds $redis_sentinel_name 1000
sentinel failover-timeout $redis_sentinel_name 3000
sentinel parallel-syncs $redis_sentinel_name 1
EOF
    fi
    port="$(sed -n 's/^port //p' "$conf" | head -n1)"
    spawn_listening "redis-sentinel-$1" "$dir" "$port" redis-server "$conf" --sentinel
}

# Every sentinel sees the primary up, its replica and the two other sentinels, and the replica
# is in sync with it.
redis_sentinel_ok() {
    local i port master primary
    primary="$(redis_sentinel_primary_port)"
    [[ -n "$primary" ]] || return 1
    for i in 1 2 3; do
        port="$(cat "$redis_sentinel_dir/s$i/port")"
        master="$(redis-cli -p "$port" SENTINEL master "$redis_sentinel_name" 2>/dev/null)" || return 1
        grep -qx "$primary" <<<"$(sed -n '/^port$/{n;p}' <<<"$master")" || return 1
        [[ "$(sed -n '/^flags$/{n;p}' <<<"$master")" == master ]] || return 1
        [[ "$(sed -n '/^num-slaves$/{n;p}' <<<"$master")" == 1 ]] || return 1
        [[ "$(sed -n '/^num-other-sentinels$/{n;p}' <<<"$master")" == 2 ]] || return 1
    done
    redis-cli -p "$primary" INFO replication 2>/dev/null | grep -q '^slave0:.*state=online' || return 1
}

redis_sentinel_up() {
    install_redis
    mkdir -p "$redis_sentinel_dir"
    local primary node
    primary="$(redis_sentinel_primary_port)"
    if [[ -z "$primary" ]]; then
        # First start (or every sentinel is down): d1 is the primary unless a sentinel config
        # already names one.
        redis_sentinel_data_up d1 ""
        primary="$(cat "$redis_sentinel_dir/d1/port")"
    fi
    for node in d1 d2; do
        redis_sentinel_data_up "$node" "$primary"
    done
    for node in s1 s2 s3; do
        redis_sentinel_sentinel_up "$node" "$primary"
    done
    for _ in $(seq 1 $((ready_timeout * 10))); do
        redis_sentinel_ok && return
        sleep 0.1
    done
    log "redis sentinel not settled after ${ready_timeout}s"
    redis-cli -p "$(cat "$redis_sentinel_dir/s1/port")" SENTINEL master "$redis_sentinel_name" >&2 || true
    exit 1
}

redis_sentinel_running() {
    local node
    for node in s1 s2 s3; do
        alive "$(read_pid "$redis_sentinel_dir/$node/pid")" && return
    done
    return 1
}

# Stopping every node forgets the setup: the next `up` creates a fresh one (empty anyway).
redis_sentinel_down() {
    [[ -d "$redis_sentinel_dir" ]] || return 0
    local node
    for node in s1 s2 s3 d1 d2; do
        [[ -d "$redis_sentinel_dir/$node" ]] \
            && stop_recorded "redis-sentinel $node" "$redis_sentinel_dir/$node"
    done
    rm -rf "$redis_sentinel_dir"
}

# The sentinels, as the broker's --redis-url takes them.
redis_sentinel_url() {
    local url="redis+sentinel://" sep="" node
    for node in s1 s2 s3; do
        url+="${sep}127.0.0.1:$(cat "$redis_sentinel_dir/$node/port")"
        sep=","
    done
    echo "$url/$redis_sentinel_name"
}

redis_sentinel_status() {
    if ! redis_sentinel_running; then
        echo "redis-sentinel: down"
        return
    fi
    local node pid primary
    primary="$(redis_sentinel_primary_port)"
    for node in d1 d2 s1 s2 s3; do
        pid="$(read_pid "$redis_sentinel_dir/$node/pid")"
        if alive "$pid"; then
            local port role=""
            port="$(cat "$redis_sentinel_dir/$node/port")"
            if [[ $node == d* ]]; then
                role=", $([[ "$port" == "$primary" ]] && echo primary || echo replica)"
            fi
            echo "redis-sentinel $node: up (pid $pid, port $port$role)"
        else
            echo "redis-sentinel $node: down"
        fi
    done
}
