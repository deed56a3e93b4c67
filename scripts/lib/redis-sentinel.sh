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
#
# The TLS variant (`redis_sentinel_tls redis_sentinel_up`, and so on), under
# $run_dir/redis-sentinel-tls: the same shape, every server TLS only (`port 0`, `tls-port`), the
# replication and the sentinels' links to the data nodes and to each other over TLS too
# (`tls-replication yes`), the test PKI of scripts/test-certs.sh (services.sh's redis_tls_flags).
# The caller defines `log`, `run_dir`, `ready_timeout`, `certs_dir`, `test_certs`,
# `redis_tls_flags`, `redis_cli_for`, and sources scripts/lib/process.sh.

redis_sentinel_dir="$run_dir/redis-sentinel"
redis_sentinel_name=stompbox
redis_sentinel_tls=0

# redis_sentinel_tls CMD...: runs one of the functions below on the TLS variant (bash's dynamic
# scope: the locals are what the functions it calls see).
redis_sentinel_tls() {
    local redis_sentinel_dir="$run_dir/redis-sentinel-tls" redis_sentinel_tls=1
    "$@"
}

redis_sentinel_cli() { redis_cli_for "$redis_sentinel_tls" "$@"; }

# The flags that make a server listen on $1: plainly, or over TLS only.
redis_sentinel_listen() {
    if (( redis_sentinel_tls )); then
        printf '%s\n' --port 0 --tls-port "$1" --tls-replication yes
        redis_tls_flags
    else
        printf '%s\n' --port "$1"
    fi
}

# The primary's port as the first sentinel that answers names it, or nothing.
redis_sentinel_primary_port() {
    local i port reply
    for i in 1 2 3; do
        port="$(cat "$redis_sentinel_dir/s$i/port" 2>/dev/null)" || continue
        reply="$(redis_sentinel_cli -p "$port" SENTINEL get-master-addr-by-name "$redis_sentinel_name" 2>/dev/null \
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
    local listen
    mapfile -t listen < <(redis_sentinel_listen "$port")
    spawn_listening "redis-sentinel-$1" "$dir" "$port" redis-server \
        --bind 127.0.0.1 "${listen[@]}" --dir "$dir" "${replicaof[@]}" \
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
        # The listen flags as config lines ("--tls-port 123" -> "tls-port 123").
        redis_sentinel_listen "$port" | paste -d' ' - - | sed 's/^--//' >"$conf"
        cat >>"$conf" <<EOF
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
    port="$(sed -n 's/^\(tls-\)\{0,1\}port \([1-9][0-9]*\)$/\2/p' "$conf" | head -n1)"
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
        master="$(redis_sentinel_cli -p "$port" SENTINEL master "$redis_sentinel_name" 2>/dev/null)" || return 1
        grep -qx "$primary" <<<"$(sed -n '/^port$/{n;p}' <<<"$master")" || return 1
        [[ "$(sed -n '/^flags$/{n;p}' <<<"$master")" == master ]] || return 1
        [[ "$(sed -n '/^num-slaves$/{n;p}' <<<"$master")" == 1 ]] || return 1
        [[ "$(sed -n '/^num-other-sentinels$/{n;p}' <<<"$master")" == 2 ]] || return 1
    done
    redis_sentinel_cli -p "$primary" INFO replication 2>/dev/null | grep -q '^slave0:.*state=online' || return 1
}

redis_sentinel_up() {
    install_redis
    (( redis_sentinel_tls )) && test_certs
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
    redis_sentinel_cli -p "$(cat "$redis_sentinel_dir/s1/port")" SENTINEL master "$redis_sentinel_name" >&2 || true
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
            && stop_recorded "${redis_sentinel_dir##*/} $node" "$redis_sentinel_dir/$node"
    done
    rm -rf "$redis_sentinel_dir"
}

# The sentinels, as the broker's --redis-url takes them (with --redis-ca $certs_dir/ca.pem for TLS).
redis_sentinel_url() {
    local url="redis+sentinel://" sep="" node
    (( redis_sentinel_tls )) && url="rediss+sentinel://"
    for node in s1 s2 s3; do
        url+="${sep}127.0.0.1:$(cat "$redis_sentinel_dir/$node/port")"
        sep=","
    done
    echo "$url/$redis_sentinel_name"
}

redis_sentinel_status() {
    if ! redis_sentinel_running; then
        echo "${redis_sentinel_dir##*/}: down"
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
            echo "${redis_sentinel_dir##*/} $node: up (pid $pid, port $port$role)"
        else
            echo "${redis_sentinel_dir##*/} $node: down"
        fi
    done
}
