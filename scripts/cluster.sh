#!/usr/bin/env bash
# A Stompbox cluster on loopback: N nodes sharing Redis (and PostgreSQL for history, when the
# binary has --postgres-url), behind a private nginx that load-balances STOMP over WebSocket.
#
#   scripts/cluster.sh up [-n N] [-- NODE_ARGS...]
#                           start N nodes (default 3) and nginx; idempotent: fast when it runs
#                           as asked, restarted when N, the binary or NODE_ARGS differ
#   scripts/cluster.sh down stop nginx and the nodes, by the PIDs `up` recorded (their logs stay
#                           in DIR/node*/node.log and DIR/nginx/logs until the next `up`)
#   scripts/cluster.sh status
#
# - Nodes: $STOMPBOX_BIN (default target/debug/stompbox), each with --node-id, its own data
#   dir and ephemeral ports, plus NODE_ARGS (e.g. `-- --presence-ttl 3s`).
# - nginx (Debian; installed when missing): examples/nginx/stompbox.conf rendered with the
#   nodes' ports and a free LB port, run as `nginx -p DIR -c DIR/nginx.conf` in the foreground
#   of its own session; nothing system-wide is read or written.
# - Redis and PostgreSQL come from scripts/services.sh (started when not up).
#   STOMPBOX_CLUSTER_REDIS=cluster: the nodes use the services' Redis Cluster
#   (STOMPBOX_REDIS_CLUSTER_URL, `services.sh up redis-cluster`) instead of the single Redis.
#
# Everything lives in $STOMPBOX_CLUSTER_DIR (default .run/cluster). Its env file cluster.env
# holds STOMPBOX_LB_URL, STOMPBOX_LB_PID, STOMPBOX_NODE_PIDS, STOMPBOX_NODE_IDS,
# STOMPBOX_NODE_WS and STOMPBOX_NODE_STOMP (space-separated in double quotes, in node order:
# the file can be `source`d), and the service URLs. STOMPBOX_CLUSTER_NODE_ID_BASE (default 1) is the first node id.
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir="$PWD"

dir="${STOMPBOX_CLUSTER_DIR:-$root_dir/.run/cluster}"
env_file="$dir/cluster.env"
services_env="${STOMPBOX_SERVICES_ENV:-$root_dir/.run/services.env}"
template="$root_dir/examples/nginx/stompbox.conf"
id_base="${STOMPBOX_CLUSTER_NODE_ID_BASE:-1}"
# A debug build on a loaded 2-core machine binds in well under a second; 30 s is slack.
ready_timeout=30

log() { printf 'cluster: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/process.sh
source "$root_dir/scripts/lib/process.sh"

broker_bin() {
    if [[ -n "${STOMPBOX_BIN:-}" ]]; then
        echo "$STOMPBOX_BIN"
    else
        echo "${CARGO_TARGET_DIR:-$root_dir/target}/debug/stompbox"
    fi
}

# Every recorded pid alive.
running() {
    [[ -f "$env_file" ]] || return 1
    local pid
    for pid in $(sed -n 's/^STOMPBOX_\(LB_PID\|NODE_PIDS\)="\?\([^"]*\)"\?$/\2/p' "$env_file"); do
        alive "$pid" || return 1
    done
}

# The ready line a node prints once it listens: "stompbox ready stomp=H:P http=H:P".
wait_ready() {
    local out=$1 pid=$2
    for _ in $(seq 1 $((ready_timeout * 10))); do
        if grep -q '^stompbox ready ' "$out" 2>/dev/null; then return; fi
        alive "$pid" || break
        sleep 0.1
    done
    log "node (pid $pid) not ready; its log:"
    tail -n 30 "${out%.out}.log" >&2
    exit 1
}

redis_url() {
    if [[ "${STOMPBOX_CLUSTER_REDIS:-}" == cluster ]]; then
        echo "$STOMPBOX_REDIS_CLUSTER_URL"
    else
        echo "$STOMPBOX_REDIS_URL"
    fi
}

start_node() {
    local i=$1 bin=$2
    shift 2
    local node_dir="$dir/node$i" args
    mkdir -p "$node_dir/data"
    args=(--stomp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --data-dir "$node_dir/data"
        --node-id $((id_base + i)) --redis-url "$(redis_url)")
    # NODE_ARGS may name their own store (a fresh database, Kafka): then not the shared one.
    if "$bin" --help | grep -q -- '--postgres-url' && [[ " $* " != *" --postgres-url "* ]]; then
        args+=(--postgres-url "$STOMPBOX_POSTGRES_URL")
    fi
    # The caller's STOMPBOX_* settings would reach the node through clap's env fallback.
    local unset=()
    while read -r name; do unset+=(-u "$name"); done < <(compgen -e | grep '^STOMPBOX_' || true)
    # A local cluster stops at once: no load balancer polls its readiness (--drain-delay).
    setsid env "${unset[@]}" STOMPBOX_DRAIN_DELAY=0 STOMPBOX_DRAIN_PERIOD=0 \
        "$bin" "${args[@]}" "$@" \
        >"$node_dir/node.out" 2>"$node_dir/node.log" </dev/null &
    echo $! >"$node_dir/pid"
}

render_nginx() {
    local lb_port=$1 nginx_dir=$2
    shift 2
    local servers="" addr
    for addr in "$@"; do
        servers+="        server $addr max_fails=1 fail_timeout=5s;\n"
    done
    # Drop the template's server lines, put ours where the first one of each upstream was,
    # move the listen port.
    awk -v servers="$servers" -v listen="        listen 127.0.0.1:$lb_port;" '
        /^[[:space:]]*upstream / { done = 0 }
        /^[[:space:]]*server 127\.0\.0\.1:[0-9]+/ { if (!done) { printf "%s", servers; done = 1 } next }
        /^[[:space:]]*listen 127\.0\.0\.1:[0-9]+;/ { print listen; next }
        { print }' "$template" >"$nginx_dir/nginx.conf"
}

install_nginx() {
    command -v nginx >/dev/null && return
    log "installing nginx (apt package nginx-light)"
    apt_install nginx-light
}

up() {
    local nodes=$1
    shift
    # Reused only when it runs with what is asked now: node count, binary and node flags.
    local spec
    spec="$nodes $(broker_bin) redis=${STOMPBOX_CLUSTER_REDIS:-single} $*"
    if running && [[ "$(cat "$dir/spec" 2>/dev/null)" == "$spec" ]]; then
        cat "$env_file"
        return
    fi
    down_quiet
    rm -rf "$dir"/node* # the last run's data and logs (down keeps them to read)
    install_nginx
    local bin
    bin="$(broker_bin)"
    [[ -x "$bin" ]] || { log "broker binary not found: $bin (cargo build -p stompbox or set STOMPBOX_BIN)"; exit 1; }
    "$bin" --help | grep -q -- '--redis-url' || { log "$bin has no --redis-url: not a cluster build"; exit 3; }
    if [[ "${STOMPBOX_CLUSTER_REDIS:-}" == cluster ]]; then
        "$root_dir/scripts/services.sh" up redis-cluster postgres >/dev/null
    else
        "$root_dir/scripts/services.sh" up redis postgres >/dev/null
    fi
    set -a
    # shellcheck disable=SC1090
    source "$services_env"
    set +a
    mkdir -p "$dir"
    local i pids=() ids=() ws=() stomp=() http=()
    # Node 0 alone first: it creates the store's schema, which concurrent first starts would race on.
    start_node 0 "$bin" "$@"
    wait_ready "$dir/node0/node.out" "$(read_pid "$dir/node0/pid")"
    for ((i = 1; i < nodes; i++)); do start_node "$i" "$bin" "$@"; done
    for ((i = 0; i < nodes; i++)); do
        local pid line
        pid="$(read_pid "$dir/node$i/pid")"
        wait_ready "$dir/node$i/node.out" "$pid"
        line="$(grep -m1 '^stompbox ready ' "$dir/node$i/node.out")"
        pids+=("$pid")
        ids+=($((id_base + i)))
        stomp+=("$(sed 's/.* stomp=\([^ ]*\).*/\1/' <<<"$line")")
        http+=("$(sed 's/.* http=\([^ ]*\).*/\1/' <<<"$line")")
        ws+=("ws://${http[-1]}/ws")
    done
    local nginx_dir="$dir/nginx" lb_port
    mkdir -p "$nginx_dir/logs" "$nginx_dir/run" "$nginx_dir/tmp"
    lb_port="$(free_port)"
    render_nginx "$lb_port" "$nginx_dir" "${http[@]}"
    nginx -t -q -p "$nginx_dir/" -c "$nginx_dir/nginx.conf"
    log "nginx on 127.0.0.1:$lb_port -> ${http[*]}"
    spawn_listening nginx "$nginx_dir" "$lb_port" nginx -p "$nginx_dir/" -c "$nginx_dir/nginx.conf" -g 'daemon off;'
    {
        echo "# written by scripts/cluster.sh up; removed by down"
        echo "STOMPBOX_LB_URL=ws://127.0.0.1:$lb_port/ws"
        echo "STOMPBOX_LB_PID=$(read_pid "$nginx_dir/pid")"
        echo "STOMPBOX_NODE_PIDS=\"${pids[*]}\""
        echo "STOMPBOX_NODE_IDS=\"${ids[*]}\""
        echo "STOMPBOX_NODE_WS=\"${ws[*]}\""
        echo "STOMPBOX_NODE_STOMP=\"${stomp[*]}\""
        grep '^STOMPBOX_\(REDIS\|POSTGRES\)_URL=' "$services_env" || true
    } >"$env_file"
    echo "$spec" >"$dir/spec"
    cat "$env_file"
}

down_quiet() {
    stop_recorded nginx "$dir/nginx"
    local node_dir
    for node_dir in "$dir"/node*; do
        [[ -d "$node_dir" ]] && stop_recorded "node ${node_dir##*/node}" "$node_dir"
    done
    rm -f "$env_file"
}

status() {
    if running; then echo "cluster: up"; cat "$env_file"; else echo "cluster: down (or partly: run up again)"; fi
}

case "${1:-}" in
up)
    shift
    nodes=3
    if [[ "${1:-}" == -n ]]; then nodes=$2; shift 2; fi
    [[ "${1:-}" == -- ]] && shift
    up "$nodes" "$@"
    ;;
down) down_quiet ;;
status) status ;;
*)
    echo "usage: $0 up [-n N] [-- NODE_ARGS...]|down|status" >&2
    exit 2
    ;;
esac
