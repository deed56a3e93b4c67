#!/usr/bin/env bash
# Chat latency on a large embedded store (issue 17 item 2): one run of 1,000 users in pairs at
# 2,000 msgs/s on a fresh copy of a pre-filled store, with per-second figures.
#
#   scripts/bench-store-tail.sh LABEL BROKER_BIN SECONDS
#
# STORE_BASE (default /work/storetail-data/base) is the pre-filled data directory, made once:
#   target/release/stompbox-chat-prefill --data-dir "$STORE_BASE" --messages 10000000 --pairs 50000
# It is copied for every run (≈ 3.5 GB for 10 M messages; the copy is deleted afterwards), so
# runs of two binaries, alternated, start from the same store. CHAT_BENCH is the load generator
# (default target/release/stompbox-chat-bench). Outputs: $OUT/LABEL.bench (the bench's report),
# LABEL.broker.log, and one line per run appended to $OUT/summary.txt (OUT defaults to
# target/bench/store-tail): load before/after, bytes written per message by the writer and the
# checkpointer threads, the WAL's size at the end, the whole-run percentiles, the per-second
# p99's median, and the first and last minute's p99.
set -euo pipefail
cd "$(dirname "$0")/.."
label=$1 bin=$2 secs=$3
base=${STORE_BASE:-/work/storetail-data/base}
bench=${CHAT_BENCH:-target/release/stompbox-chat-bench}
out=${OUT:-target/bench/store-tail}
stomp=${STOMP_LISTEN:-127.0.0.1:62913} http=${HTTP_LISTEN:-127.0.0.1:62974}
[[ -d $base ]] || { echo "no pre-filled store at $base (see the header)" >&2; exit 2; }
mkdir -p "$out"
dir=$(dirname "$base")/run-$label
rm -rf "$dir"; cp -a --reflink=never "$base" "$dir"; sync

"$bin" --data-dir "$dir" --chat-rate 0 --log warn --stomp-listen "$stomp" --http-listen "$http" \
    > "$out/$label.broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$dir"' EXIT
sleep 3
thread() { dirname "$(grep -l "$1" /proc/$broker/task/*/comm)"; }
writer=$(thread chat-store-writ) checkpointer=$(thread chat-store-chec)
written() { awk '/^write_bytes/ {print $2}' "$1/io"; }
w0=$(written "$writer") c0=$(written "$checkpointer") l0=$(cut -d' ' -f1 /proc/loadavg) t0=$(date -u +%T)

"$bench" --stomp "$stomp" --pairs 500 --rate 2000 --seconds "$secs" --per-second > "$out/$label.bench" 2>&1

w1=$(written "$writer") c1=$(written "$checkpointer") l1=$(cut -d' ' -f1 /proc/loadavg)
wal=$(stat -c %s "$dir"/*-wal 2>/dev/null || echo 0)
stored=$(grep -o 'receipts [0-9]*' "$out/$label.bench" | head -1 | awk '{print $2}')
per_second=$(awk '/^ *[0-9]+ +[0-9]+ +[0-9.]+ \/ [0-9.]+ \/ [0-9.]+/ {print $5}' "$out/$label.bench" | sort -n |
    awk '{a[NR] = $1; if ($1 <= 5) ok++} END {printf "per-second p99 median %.1f ms, seconds with p99 <= 5 ms %d/%d", a[int((NR + 1) / 2)], ok, NR}')
echo "$label $t0 load $l0->$l1 stored $stored writer $(((w1 - w0) / stored)) B/msg" \
    "checkpointer $(((c1 - c0) / stored)) B/msg wal-at-end $wal |" \
    "$(grep -o 'p50.*' "$out/$label.bench" | head -1) | $per_second | $(grep first "$out/$label.bench")" |
    tee -a "$out/summary.txt"
