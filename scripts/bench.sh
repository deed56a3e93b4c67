#!/usr/bin/env bash
# Stompbox vs RabbitMQ vs ActiveMQ Classic, same machine, same run, same load generator.
#
#   ./scripts/bench.sh            full run (~25 min), rewrites docs/benchmarks.md down to its kept line + docs/bench/*.png
#   ./scripts/bench.sh --quick    short runs (~6 min), same outputs
#   ./scripts/bench.sh --smoke    every scenario for a second against a Stompbox it starts itself
#   ./scripts/bench.sh --only stompbox,rabbitmq     a subset of brokers
#   ./scripts/bench.sh --cases idle-tcp,idle-ws     re-run some cases, keeping the other results
#   STOMPBOX_BIN=/path/to/stompbox ./scripts/bench.sh   measure that broker binary (e.g. a release
#                                   build of the main branch) instead of this checkout's
#
# Installs rabbitmq-server and activemq from Debian if missing, builds Stompbox and the load
# generator in release mode, then for each broker in turn: start a private instance on loopback
# ports (scripts/bench-brokers.sh), run every case, stop it by PID. Never two brokers under load
# at once. Raw outcomes land in $BENCH_DIR/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
smoke=0
brokers=stompbox,rabbitmq,activemq
cases=""
while (($#)); do
    case $1 in
    --quick) quick=1 ;;
    --smoke) smoke=1 ;;
    --only) brokers=$2; shift ;;
    --cases) cases=$2; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
    esac
    shift
done

if ((smoke)); then
    cargo build -q -p stompbox -p stompbox-bench
    exec cargo run -q -p stompbox-bench -- smoke
fi

export BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}
source scripts/bench-brokers.sh
results=$BENCH_DIR/results
[[ -n "$cases" ]] || rm -rf "$results"
mkdir -p "$results"

trap 'stop_broker' EXIT INT TERM

install_peers
log "building stompbox and stompbox-bench (release)"
cargo build -q --release -p stompbox -p stompbox-bench
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
SB_BIN=${STOMPBOX_BIN:-$target_dir/release/stompbox}
BENCH=$target_dir/release/stompbox-bench
# The generator needs as many descriptors as the broker has connections.
ulimit -n "$(ulimit -Hn)"

if ((quick)); then
    dur=3; idle_sb=5000; idle_peer=2000; pairs_big=4000; hold=8
else
    dur=10; idle_sb=19000; idle_peer=5000; pairs_big=10000; hold=15
fi

# run_case BROKER CASE SCENARIO ARGS...: one scenario, its JSON in $results; a dirty or failed
# run is recorded (exit status in the log) and the run goes on.
run_case() {
    local broker=$1 case=$2 scenario=$3
    shift 3
    [[ -z "$cases" || ",$cases," == *",$case,"* ]] || return 0
    log "$broker: $case"
    local status=0
    "$BENCH" "$scenario" --broker "$broker" --case "$case" --json "$results/${broker}__${case}.json" \
        --drain-timeout 15 "$@" 2>&1 | tee "$results/${broker}__${case}.log" | sed 's/^/    /' || status=$?
    ((status == 0)) || log "$broker: $case exited $status"
    # A broker still working off the previous case's backlog would be measured on the next.
    wait_idle "$(rss_pid "$BROKER_PID")"
}

# Waits (up to 60 s) until process $1 uses under 5% of a core over a second.
wait_idle() {
    local pid=$1 i before after tick
    tick=$(getconf CLK_TCK)
    for ((i = 0; i < 60; i++)); do
        before=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
        sleep 1
        after=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
        (((after - before) * 100 < 5 * tick)) && return 0
    done
    log "pid $pid still busy after 60 s"
}

run_all() {
    local broker=$1 stomp=$2 ws=$3 prefetch=$4 idle_n=$5
    local c=(--stomp "$stomp")
    run_case "$broker" fanout-10k-10 fanout "${c[@]}" --publishers 1 --topics 1 --subscribers 10 --rate 10000 --duration "$dur"
    # The 1M deliveries/s target at a fixed rate: 10k msgs/s to 100 subscribers.
    run_case "$broker" fanout-10k-100 fanout "${c[@]}" --publishers 1 --topics 1 --subscribers 100 --rate 10000 --duration "$dur"
    run_case "$broker" pairs-1k pairs "${c[@]}" --clients 1000 --rate 5000 --duration "$dur"
    run_case "$broker" pairs-big pairs "${c[@]}" --clients "$pairs_big" --rate 5000 --duration "$dur"
    run_case "$broker" ack-10q ack "${c[@]}" --queues 10 --rate 10000 --duration "$dur" --sub-header "$prefetch"
    run_case "$broker" reconnect-1k reconnect "${c[@]}" --clients 1000
    if [[ -n "$ws" ]]; then
        # STOMP over WebSocket, as browsers connect (Stompbox vs RabbitMQ Web-STOMP).
        local w=(--transport ws --ws "$ws")
        run_case "$broker" fanout-10k-10-ws fanout "${c[@]}" "${w[@]}" --publishers 1 --topics 1 --subscribers 10 --rate 10000 --duration "$dur"
        run_case "$broker" pairs-1k-ws pairs "${c[@]}" "${w[@]}" --clients 1000 --rate 5000 --duration "$dur"
    fi
    # Unbounded last: it leaves the deepest backlog behind.
    run_case "$broker" fanout-1x100 fanout "${c[@]}" --publishers 1 --topics 1 --subscribers 100 --rate 0 --duration "$dur"
    # A fresh broker for each idle count, so memory the allocator kept from earlier cases
    # (or from the other transport) does not hide the cost of a connection.
    [[ -z "$cases" || ",$cases," == *",idle-"* ]] || return 0
    restart_"$broker"
    run_case "$broker" idle-tcp idle "${c[@]}" --connections "$idle_n" --hold "$hold" --broker-pid "$(rss_pid "$BROKER_PID")"
    if [[ -n "$ws" && ( -z "$cases" || ",$cases," == *",idle-ws,"* ) ]]; then
        restart_"$broker"
        run_case "$broker" idle-ws idle "${c[@]}" --transport ws --ws "$ws" --connections "$idle_n" --hold "$hold" --broker-pid "$(rss_pid "$BROKER_PID")"
    fi
}

restart_stompbox() { stop_broker; start_stompbox "$SB_BIN"; }
restart_rabbitmq() { stop_broker; start_rabbitmq; }
restart_activemq() { stop_broker; start_activemq; }

versions=()
started=$(date -u '+%H:%M')
for broker in ${brokers//,/ }; do
    case $broker in
    stompbox)
        start_stompbox "$SB_BIN"
        if [[ -n "${STOMPBOX_BIN:-}" ]]; then
            built="binary $STOMPBOX_BIN"
        else
            built="git $(git rev-parse --short HEAD)"
            git diff --quiet HEAD -- broker stomp-codec || built+=" + uncommitted broker changes in the working tree"
        fi
        versions+=("stompbox=$("$SB_BIN" --version | awk '{print $2}') ($built, release build)")
        run_all stompbox "127.0.0.1:$SB_STOMP_PORT" "ws://127.0.0.1:$SB_HTTP_PORT/ws" "prefetch-count:100" "$idle_sb"
        ;;
    rabbitmq)
        start_rabbitmq
        versions+=("rabbitmq=$(dpkg-query -W -f '${Version}' rabbitmq-server) (Erlang $(dpkg-query -W -f '${Version}' erlang-base))")
        run_all rabbitmq "127.0.0.1:$RMQ_STOMP_PORT" "ws://127.0.0.1:$RMQ_WS_PORT/ws" "prefetch-count:100" "$idle_peer"
        ;;
    activemq)
        start_activemq
        versions+=("activemq=$(dpkg-query -W -f '${Version}' activemq) ($(java -version 2>&1 | head -1))")
        run_all activemq "127.0.0.1:$AMQ_STOMP_PORT" "" "activemq.prefetchSize:100" "$idle_peer"
        ;;
    *) echo "unknown broker $broker" >&2; exit 64 ;;
    esac
    stop_broker
done

cmd="./scripts/bench.sh"
[[ -n "${STOMPBOX_BIN:-}" ]] && cmd="STOMPBOX_BIN=$STOMPBOX_BIN $cmd"
((quick)) && cmd+=" --quick"
[[ $brokers != stompbox,rabbitmq,activemq ]] && cmd+=" --only $brokers"
[[ -n "$cases" ]] && cmd+=" --cases $cases (other cases from the previous run)"
meta=(
    --meta "command=$cmd"
    --meta "date=$(date -u '+%Y-%m-%d'), $started–$(date -u '+%H:%M') UTC"
    --meta "machine=$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr)"
    --meta "load=load average at report time: $(cut -d' ' -f1-3 /proc/loadavg)"
    --meta "duration=${dur}s per throughput case; idle: stompbox ${idle_sb}, peers ${idle_peer} connections held ${hold}s; pairs-big ${pairs_big} clients"
)
for v in "${versions[@]}"; do meta+=(--meta "version=$v"); done
# Kept with the results so the report can be rebuilt without re-running:
#   xargs -0 -a target/bench/results/meta.args target/release/stompbox-bench report --results target/bench/results
printf '%s\0' "${meta[@]}" >"$results/meta.args"
"$BENCH" report --results "$results" --out docs/benchmarks.md --plots docs/bench "${meta[@]}"
log "wrote docs/benchmarks.md and docs/bench/*.png"
