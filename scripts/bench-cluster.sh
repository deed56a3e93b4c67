#!/usr/bin/env bash
# Cluster benchmarks (not tests; figures in docs/benchmarks.md, "Cluster"):
#
#   ./scripts/bench-cluster.sh [--quick] [--no-build] [--redis cluster] [--store streamed]
#       [--nodes 2,3] [--rates 2000] [--pairs 60] [--cases latency,throughput,reconnect,groups,publish]
#
# - --store streamed: throughput on the streamed store (each cluster on a fresh database and
#   Kafka topic of the services' PostgreSQL and tansu, one `stompbox-sink` writing it) instead of
#   the nodes writing PostgreSQL directly. Each throughput run then also prints the CPU time
#   (utime+stime from /proc) of every node, the sink, PostgreSQL (postmaster and backends),
#   tansu and Redis over the run: which process the 2 cores go to. Output in
#   $BENCH_DIR/cluster-streamed.
# - --nodes, --rates, --pairs: throughput's node counts, offered rates (msgs/s, each for 10 s)
#   and pairs; `same` (the baseline) runs at the last rate only, with 3 nodes.
# - --redis cluster: the nodes on the Redis Cluster of `scripts/services.sh up redis-cluster`
#   (3 primaries, 3 replicas; STOMPBOX_CLUSTER_REDIS=cluster for scripts/cluster.sh) instead of
#   one Redis; throughput then also runs with 1 node; output in $BENCH_DIR/cluster-rcluster.
#
# - latency: 3 nodes, chat pairs at 50 and 200 msgs/s, pairs on one node (`same`) then split over
#   two (`cross`): send->delivered and RECEIPT->delivered p50/p99, with and without the Redis
#   hop, same cluster, same run.
# - throughput: every pair split over nodes, offered 2,000 msgs/s (above what one PostgreSQL
#   takes here, so the backlog drains for up to 20 s after), with 2 and then 3 nodes (and
#   3 nodes with pairs on one node as the baseline): messages stored and delivered per second.
# - latency runs at 200 msgs/s: at 1,000 the shared PostgreSQL saturates (~800/s here) and
#   queueing, not the hop, sets the figures.
# - groups: group fan-out (stompbox-group-bench): one GROUP of 100, then of 1,000 members, all
#   online, spread round-robin over the nodes, 3 of them sending (10 msgs/s in all to the
#   1,000, 50 to the 100: ~10k and ~5k deliveries/s offered), with 1, 2 and 3 nodes; nodes
#   started with --room-join-grace 100ms so the run measures the room channels, not the grace.
# - publish: Redis's own PUBLISH ceiling (redis-benchmark, ~300-byte payloads, two subscribers
#   reading), unpipelined and at pipeline depths 16 and 64: the hop's ceiling without brokers.
# - reconnect: 1,000 chat clients of one node of 3, that node killed with SIGKILL: time until
#   all are back through nginx and resynced (clients/node/bench/reconnect-storm.mjs).
#
# Release builds (--no-build: the ones already in target/release; STOMPBOX_BIN=PATH: that broker); each case on a fresh cluster (scripts/cluster.sh, own directory) over the
# Redis and PostgreSQL of scripts/services.sh. Output, with `uptime` before each case, in
# $BENCH_DIR/cluster/*.txt (default target/bench/cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
build=1
cases=latency,throughput,reconnect,groups
store=embedded
node_list=2,3
rates=2000
pairs=60
while (($#)); do
    case $1 in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --cases) cases=$2; shift ;;
    --nodes) node_list=$2; shift ;;
    --rates) rates=$2; shift ;;
    --pairs) pairs=$2; shift ;;
    --store)
        [[ $2 == streamed ]] || { echo "--store takes: streamed" >&2; exit 64; }
        store=streamed
        shift
        ;;
    --redis)
        [[ $2 == cluster ]] || { echo "--redis takes: cluster" >&2; exit 64; }
        export STOMPBOX_CLUSTER_REDIS=cluster
        shift
        ;;
    -h | --help) sed -n "2,/^set -euo/p" "$0" | sed "\$d"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
    esac
    shift
done
if ((quick)); then seconds=4; storm=300; else seconds=10; storm=1000; fi

suffix=${STOMPBOX_CLUSTER_REDIS:+-rcluster}
[[ $store == streamed ]] && suffix+=-streamed
out=${BENCH_DIR:-$PWD/target/bench}/cluster$suffix
mkdir -p "$out"
log() { printf 'bench-cluster: %s\n' "$*" >&2; }

if ((build)); then
    log "building stompbox and stompbox-chat-bench (release)"
    cargo build -q --release -p stompbox -p stompbox-bench --bin stompbox --bin stompbox-chat-bench \
        --bin stompbox-group-bench
    [[ $store == streamed ]] && cargo build -q --release -p persistence-sink --bin stompbox-sink
fi
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
export STOMPBOX_BIN=${STOMPBOX_BIN:-$target_dir/release/stompbox}
chat_bench=$target_dir/release/stompbox-chat-bench
group_bench=$target_dir/release/stompbox-group-bench
sink_bin=$target_dir/release/stompbox-sink
./scripts/setup-node.sh >/dev/null
if [[ ${STOMPBOX_CLUSTER_REDIS:-} == cluster ]]; then
    ./scripts/services.sh up redis-cluster postgres >/dev/null
else
    ./scripts/services.sh up redis postgres >/dev/null
fi
[[ $store == streamed ]] && ./scripts/services.sh up tansu >/dev/null

export STOMPBOX_CLUSTER_DIR=$out/run
# A failed run should say why in one line, not with a backtrace.
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0
# shellcheck source=scripts/lib/bench-streamed-store.sh
source scripts/lib/bench-streamed-store.sh
trap './scripts/cluster.sh down >/dev/null 2>&1 || true; sink_stop' EXIT INT TERM

# cluster NODES [NODE_ARGS...]: a fresh cluster; sets env vars from its cluster.env. On the
# streamed store: a fresh database, topic and sink first, the nodes pointed at them.
cluster() {
    local nodes=$1
    shift
    ./scripts/cluster.sh down >/dev/null 2>&1 || true
    sink_stop
    if [[ $store == streamed ]]; then
        sink_start "$out/run" "$sink_bin"
        set -- "$@" "${sink_node_args[@]}"
    fi
    ./scripts/cluster.sh up -n "$nodes" -- "$@" >/dev/null
    set -a
    # shellcheck disable=SC1091
    source "$STOMPBOX_CLUSTER_DIR/cluster.env"
    set +a
}

# run CASE CMD...: the command's output, after `uptime`, into $out/CASE.txt and the terminal. On
# the Redis Cluster also what each Redis node did meanwhile (scripts/redis-shard-stats.py).
run() {
    local name=$1
    shift
    log "$name"
    local shards=${STOMPBOX_REDIS_CLUSTER_DIR:-$PWD/.run/services/redis-cluster}
    [[ ${STOMPBOX_CLUSTER_REDIS:-} == cluster ]] && python3 scripts/redis-shard-stats.py snapshot "$shards" >"$out/$name.before.json"
    # A dirty run (loss) still prints its numbers; its exit status is recorded, the run goes on.
    {
        echo "\$ uptime"; uptime; echo "\$ $*"
        [[ $store == streamed ]] && cpu_snapshot >"$out/$name.cpu-before"
        "$@" || echo "exit status $?"
        [[ $store == streamed ]] && cpu_report "$out/$name.cpu-before" && cluster_counters
        if [[ ${STOMPBOX_CLUSTER_REDIS:-} == cluster ]]; then
            echo "Redis Cluster nodes during the run:"
            python3 scripts/redis-shard-stats.py report "$shards" "$out/$name.before.json"
        fi
    } 2>&1 | tee "$out/$name.txt"
}

want() { [[ ",$cases," == *",$1,"* ]]; }

if want latency; then
    cluster 3
    stomp=${STOMPBOX_NODE_STOMP// /,}
    # 10 pairs at 50 msgs/s: the hop with little queueing; 50 pairs at 200 msgs/s: under load.
    for load in 10:50 50:200; do
        for placement in same cross; do
            run "latency-${load#*:}-$placement" "$chat_bench" --stomp "$stomp" --placement "$placement" \
                --pairs "${load%:*}" --rate "${load#*:}" --seconds "$seconds" --drain-seconds 5 \
                --prefix "lat-$placement-$RANDOM"
        done
    done
fi

if want throughput; then
    # --chat-rate 0: the per-user request limit (20/s) would cap a bench user long before a node.
    [[ ${STOMPBOX_CLUSTER_REDIS:-} == cluster && $node_list == 2,3 ]] && node_list=1,2,3
    IFS=, read -r -a node_counts <<<"$node_list"
    IFS=, read -r -a rate_list <<<"$rates"
    for nodes in "${node_counts[@]}"; do
        cluster "$nodes" --chat-rate 0
        for rate in "${rate_list[@]}"; do
            for placement in cross same; do
                [[ $placement == same && ($nodes != 3 || $rate != "${rate_list[-1]}") ]] && continue
                [[ $placement == cross && $nodes == 1 ]] && continue
                name="throughput-$nodes-nodes-$placement"
                [[ $rates == 2000 ]] || name+="-$rate"
                run "$name" "$chat_bench" --stomp "${STOMPBOX_NODE_STOMP// /,}" \
                    --placement "$placement" --pairs "$pairs" --rate "$rate" --seconds "$seconds" \
                    --drain-seconds 20 --prefix "tp$nodes$placement$rate-$RANDOM"
            done
        done
    done
fi

if want groups; then
    for nodes in 1 2 3; do
        cluster "$nodes" --chat-rate 0 --room-join-grace 100ms
        for load in 100:50 1000:10; do
            run "groups-${load%:*}-members-$nodes-nodes" "$group_bench" --stomp "${STOMPBOX_NODE_STOMP// /,}" \
                --members "${load%:*}" --senders 3 --rate "${load#*:}" --seconds "$seconds" --drain-seconds 20 \
                --prefix "g$nodes-${load%:*}-$RANDOM"
        done
    done
fi

if want publish; then
    # shellcheck disable=SC1091
    source .run/services.env
    run publish-ceiling redis_publish_ceiling "${STOMPBOX_REDIS_URL}"
fi

if want reconnect; then
    cluster 3
    read -r -a ws <<<"$STOMPBOX_NODE_WS"
    read -r -a pids <<<"$STOMPBOX_NODE_PIDS"
    run "reconnect-$storm" node clients/node/bench/reconnect-storm.mjs --lb "$STOMPBOX_LB_URL" \
        --node "${ws[0]}" --pid "${pids[0]}" --other "${ws[1]}" --clients "$storm"
fi
log "results in $out"
