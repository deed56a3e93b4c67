#!/usr/bin/env bash
# The write path for scale, end to end, on this machine: a release `stompbox` with
# --kafka-brokers/--postgres-url, a release `stompbox-sink`, and `stompbox-chat-bench` sending
# chat messages with receipts at a fixed rate. Prints the bench's send→RECEIPT (Kafka ack) and
# send→delivered percentiles and the sink's persistence lag (record timestamp = accept → row
# committed) windows.
#
#   scripts/bench-streamed.sh [RATE msgs/s, default 10000] [SECONDS, default 10] [PAIRS, default 50]
#
# STOMPBOX_BIN=PATH runs that broker binary instead of this tree's (a before/after pair in one
# session: copy the old release binary aside first). STOMPBOX_PERF=FILE records the broker
# with `perf record --call-graph dwarf` (STOMPBOX_PERF_FREQ samples/s, default 199) while the bench sends, for a profile or a flame graph
# (`perf report -i FILE --no-children --stdio`, or `perf script -i FILE |
# inferno-collapse-perf | inferno-flamegraph > broker.svg`). STOMPBOX_SKIP_BUILD=1 runs the
# release binaries as they are. STOMPBOX_METRICS=FILE saves the broker's /metrics after the
# bench (the sequencer's concurrency, the store's accept and ack times). STOMPBOX_BROKER_ARGS adds
# arguments to the broker's command line (word-split), e.g. `--kafka-option compression.type=none`. STOMPBOX_RELEASE_DIR=DIR takes the sink and the bench from DIR
# instead of this tree's target/release (e.g. a base commit's binaries). The broker's CPU time
# (utime+stime from /proc) over the bench's run is printed with the CPU per stored row: the
# figure the chat path's per-message cost is judged by (much steadier than throughput here).
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-10000}"
seconds="${2:-10}"
pairs="${3:-50}"

./scripts/services.sh up >/dev/null
# shellcheck disable=SC1091
source .run/services.env
[ -n "${STOMPBOX_SKIP_BUILD:-}" ] || cargo build -q --release -p stompbox -p persistence-sink -p stompbox-bench
target="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release"
target="${STOMPBOX_RELEASE_DIR:-$target}"

run="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$run"
}
trap cleanup EXIT

name="sbb_$(date +%s)_$$"
psql_bin=/usr/lib/postgresql/15/bin/psql
"$psql_bin" "$STOMPBOX_POSTGRES_URL" -qc "CREATE DATABASE $name"
db_url="${STOMPBOX_POSTGRES_URL%/*}/$name"
topic="${name//_/.}"

"$target/stompbox-sink" --kafka-brokers "$STOMPBOX_KAFKA_BROKERS" --postgres-url "$db_url" \
    --events-topic "$topic" --dead-letter-topic "$topic.dlt" --group-id "$topic.sink" \
    --log-interval 2s >"$run/sink.out" 2>"$run/sink.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "stompbox-sink ready" "$run/sink.out" && break; sleep 0.1; done

# shellcheck disable=SC2086 # STOMPBOX_BROKER_ARGS is split into words on purpose
"${STOMPBOX_BIN:-$target/stompbox}" --stomp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --data-dir "$run/data" \
    --postgres-url "$db_url" --kafka-brokers "$STOMPBOX_KAFKA_BROKERS" --kafka-topic "$topic" \
    --chat-rate 0 --log warn ${STOMPBOX_BROKER_ARGS:-} >"$run/broker.out" 2>"$run/broker.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "stompbox ready" "$run/broker.out" && break; sleep 0.1; done
stomp="$(sed -n 's/^stompbox ready stomp=\([^ ]*\) .*/\1/p' "$run/broker.out")"

echo "broker: ${STOMPBOX_BIN:-$target/stompbox} pid ${pids[-1]}"
echo "load before: $(uptime)"
if [ -n "${STOMPBOX_PERF:-}" ]; then
    # The bench connects and opens conversations for a few seconds first; record the sending.
    (sleep 3 && perf record -q --call-graph dwarf,16384 -F "${STOMPBOX_PERF_FREQ:-199}" -p "${pids[-1]}" -o "$STOMPBOX_PERF" -- sleep "$seconds") &
fi
broker_pid="${pids[-1]}"
# utime + stime of the broker, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 has no spaces here).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$broker_pid/stat"; }
sys_ticks() { awk '{ print $15 }' "/proc/$broker_pid/stat"; }
# Context switches of all the broker's threads (a wake-up each, mostly).
# A thread ending between the glob and the read is skipped (awk goes on to the next file).
switches() {
    awk '/ctxt_switches/ { n += $2 } END { print n + 0 }' /proc/"$broker_pid"/task/*/status 2>/dev/null || true
}
cpu_before="$(cpu_ticks)"
sys_before="$(sys_ticks)"
switches_before="$(switches)"
# The bench fails on any refusal (RATE_LIMITED at overload): report the rest anyway, then exit
# with its status.
bench_status=0
RUST_BACKTRACE=0 "$target/stompbox-chat-bench" --stomp "$stomp" --pairs "$pairs" --rate "$rate" \
    --seconds "$seconds" || bench_status=$?
cpu_after="$(cpu_ticks)"
sys_after="$(sys_ticks)"
switches_after="$(switches)"
if [ -n "${STOMPBOX_METRICS:-}" ]; then
    http="$(sed -n 's/^stompbox ready .*http=\([^ ]*\).*/\1/p' "$run/broker.out")"
    curl -s "http://$http/metrics" >"$STOMPBOX_METRICS" || true
fi
echo "load after: $(uptime)"
sleep 3 # the sink's last window
echo "sink persistence-lag windows (accept → row committed):"
sed 's/\x1b\[[0-9;]*m//g' "$run/sink.log" | grep -o "records=[0-9]*.*" | grep -o "records=[0-9]*\|lag[a-z_0-9]*=[0-9a-z.]*" |
    paste -sd' ' | sed 's/ records=/\nrecords=/g'
echo
rows="$("$psql_bin" "$db_url" -Atc 'SELECT count(*) FROM messages')"
echo "rows: $rows"
python3 -c 'import sys
ticks, hz, rows, sys_ticks, switches = (int(a) for a in sys.argv[1:6])
secs = ticks / hz
print(f"broker CPU during the bench: {secs:.2f} s; per stored row: {secs * 1e6 / max(rows, 1):.1f} us")
print(f"of it in the kernel: {sys_ticks / hz:.2f} s; context switches per stored row: {switches / max(rows, 1):.2f}")' \
    "$((cpu_after - cpu_before))" "$(getconf CLK_TCK)" "$rows" "$((sys_after - sys_before))" \
    "$((switches_after - switches_before))"
exit "$bench_status"
