#!/usr/bin/env bash
# Two Stompbox binaries side by side, for a refactor's "no regression beyond noise" check:
#
#   ./scripts/bench-compare.sh BEFORE_BIN AFTER_BIN [ROUNDS=2] [--quick]
#
# Runs fanout-10k-10, pairs-1k and idle-ws (scripts/bench.sh's parameters; --quick: its short
# ones) against each binary in turn, alternating before/after for ROUNDS rounds so drift of this
# shared machine hits both alike, with one load generator (this checkout's release
# stompbox-bench, built if missing). A fresh broker per case. Prints one line per run and
# case; raw outcomes in $BENCH_DIR (default target/bench-compare). Build a past commit's binary
# with e.g. `git worktree add /tmp/before <commit> && (cd /tmp/before &&
# cargo build --release -p stompbox)`.
set -euo pipefail
cd "$(dirname "$0")/.."

(($# >= 2)) || { sed -n '2,12p' "$0"; exit 64; }
before=$(realpath "$1") after=$(realpath "$2")
shift 2
rounds=2 dur=10 idle_n=19000 hold=15
while (($#)); do
    case $1 in
    --quick) dur=3 idle_n=5000 hold=8 ;;
    *) rounds=$1 ;;
    esac
    shift
done

export BENCH_DIR=${BENCH_DIR:-$PWD/target/bench-compare}
source scripts/bench-brokers.sh
trap stop_broker EXIT INT TERM
ulimit -n "$(ulimit -Hn)"

target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
bench=$target_dir/release/stompbox-bench
[[ -x "$bench" ]] || cargo build -q --release -p stompbox-bench

# case name, scenario, arguments (the idle case adds the broker's pid itself)
cases=(
    "fanout-10k-10|fanout --publishers 1 --topics 1 --subscribers 10 --rate 10000 --duration $dur"
    "pairs-1k|pairs --clients 1000 --rate 5000 --duration $dur"
    "idle-ws|idle --transport ws --connections $idle_n --hold $hold"
)

run_case() {
    local label=$1 bin=$2 spec=$3 out
    local case=${spec%%|*} args=${spec#*|}
    out=$BENCH_DIR/$label
    mkdir -p "$out"
    start_stompbox "$bin"
    # shellcheck disable=SC2086 # the scenario's arguments are words
    "$bench" $args --broker stompbox --case "$case" --json "$out/$case.json" --drain-timeout 15 \
        --stomp "127.0.0.1:$SB_STOMP_PORT" --ws "ws://127.0.0.1:$SB_HTTP_PORT/ws" \
        --broker-pid "$BROKER_PID" >"$out/$case.log" 2>&1
    stop_broker
}

for ((round = 1; round <= rounds; round++)); do
    for which in before after; do
        bin=$before
        [[ $which == after ]] && bin=$after
        for spec in "${cases[@]}"; do
            log "round $round, $which: ${spec%%|*}"
            run_case "$which-$round" "$bin" "$spec"
        done
    done
done

python3 - "$BENCH_DIR" <<'EOF'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
for path in sorted(root.glob("*/*.json")):
    o = json.loads(path.read_text())
    lat = o.get("latency") or {}
    per = o.get("bytes_per_connection")
    print(f"{path.parent.name:10} {path.stem:14} {o['throughput']:>11,.0f}/s "
          f"p50 {lat.get('p50_us', 0):>7.0f} us  p99 {lat.get('p99_us', 0):>7.0f} us  "
          f"lost {o['lost']}  dup {o['duplicated']}  errors {len(o['errors'])}"
          + (f"  {per:,.0f} B/conn" if per else ""))
EOF
