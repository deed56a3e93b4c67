#!/usr/bin/env bash
# What issue 16's fix costs (a benchmark, not a test; figures in docs/benchmarks.md, "Kafka mode:
# cross-node delivery after the ack"):
#
#   ./scripts/bench-kafka-cross.sh BROKER_BIN... [-- CHAT_BENCH_ARGS...]
#
# For each broker binary: 3 nodes (scripts/cluster.sh) writing through Kafka (the tansu of
# scripts/services.sh) and one stompbox-sink into a fresh database and topic; then
# stompbox-chat-bench, 10 pairs at 50 msgs/s, pairs on one node (`same`) and split over two
# (`cross`): send->delivered and RECEIPT->delivered p50/p99. Give the binary before a change and
# the one after to compare them in one session. The sink is target/<profile>/stompbox-sink beside
# stompbox-chat-bench (STOMPBOX_CHAT_BENCH, default target/debug/stompbox-chat-bench).
# Output, with `uptime` before each run, in $BENCH_DIR/kafka-cross/ (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
bins=()
while (($#)) && [[ $1 != -- ]]; do bins+=("$(realpath "$1")"); shift; done
[[ ${1:-} == -- ]] && shift
((${#bins[@]})) || { sed -n '2,14p' "$0"; exit 64; }
chat_bench=${STOMPBOX_CHAT_BENCH:-$PWD/target/debug/stompbox-chat-bench}
sink_bin=$(dirname "$chat_bench")/stompbox-sink
out=${BENCH_DIR:-$PWD/target/bench}/kafka-cross
mkdir -p "$out"
./scripts/services.sh up redis postgres tansu >/dev/null
set -a
# shellcheck disable=SC1091
source .run/services.env
set +a
export STOMPBOX_CLUSTER_DIR=$out/run RUST_BACKTRACE=0
psql=/usr/lib/postgresql/15/bin/psql
[[ -x $psql ]] || psql=psql
sink_pid=
stop() {
    ./scripts/cluster.sh down >/dev/null 2>&1 || true
    [[ -n $sink_pid ]] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
    sink_pid=
}
trap stop EXIT INT TERM

for bin in "${bins[@]}"; do
    name=sbb_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
    topic=${name//_/.}
    "$psql" "$STOMPBOX_POSTGRES_URL" -qc "CREATE DATABASE $name"
    url=${STOMPBOX_POSTGRES_URL%/*}/$name
    "$sink_bin" --kafka-brokers "$STOMPBOX_KAFKA_BROKERS" --postgres-url "$url" --events-topic "$topic" \
        --dead-letter-topic "$topic.dlt" --group-id "$topic.sink" --partitions 2 >"$out/sink.log" 2>&1 &
    sink_pid=$!
    STOMPBOX_BIN=$bin ./scripts/cluster.sh up -n 3 -- --postgres-url "$url" --kafka-brokers \
        "$STOMPBOX_KAFKA_BROKERS" --kafka-topic "$topic" --kafka-partitions 2 --kafka-sink-group "$topic.sink" >/dev/null
    # shellcheck disable=SC1091
    source "$STOMPBOX_CLUSTER_DIR/cluster.env"
    label=$(basename "$(dirname "$bin")")-$(basename "$bin")
    for placement in same cross; do
        file=$out/$label-$placement.txt
        {
            echo "\$ uptime"; uptime
            echo "\$ $chat_bench --stomp ${STOMPBOX_NODE_STOMP// /,} --placement $placement --pairs 10 --rate 50 --seconds 10 --drain-seconds 5 $*"
            "$chat_bench" --stomp "${STOMPBOX_NODE_STOMP// /,}" --placement "$placement" --pairs 10 --rate 50 \
                --seconds 10 --drain-seconds 5 --prefix "kx-$placement-$RANDOM" "$@" || echo "exit status $?"
        } 2>&1 | tee "$file"
    done
    stop
done
echo "results in $out" >&2
