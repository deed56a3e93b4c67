#!/usr/bin/env bash
# Two Stompbox builds side by side, the regression gate of issue 17:
#
#   ./scripts/bench-compare.sh BEFORE AFTER_BIN [ROUNDS=2] [--quick] [--max-regression PCT]
#
# BEFORE is a broker binary, or a git revision (e.g. the previous release, `origin/main`, a tag):
# a revision is built in release into target/baseline/<commit> (a detached worktree, kept for the
# next run). Runs fanout-10k-10, fanout-1x100 (128-byte bodies, as fast as it goes), pairs-1k,
# idle-tcp and idle-ws (scripts/bench.sh's parameters; --quick: its short ones) against each
# build in turn, alternating before/after for ROUNDS rounds so drift of this shared machine hits
# both alike, with one load generator (this checkout's release stompbox-bench, built if missing).
# A fresh broker per case. Then scripts/bench_gate.py prints each run and each case's medians,
# and the script FAILS (exit 1) on any lost, duplicated or reordered message, or a median worse
# by more than PCT % (default 10): throughput down, p99 up, bytes per connection up. Raw
# outcomes in $BENCH_DIR (default target/bench-compare, emptied first).
set -euo pipefail
cd "$(dirname "$0")/.."

(($# >= 2)) || { sed -n '2,12p' "$0"; exit 64; }
before_arg=$1 after=$(realpath "$2")
shift 2
rounds=2 dur=10 idle_n=19000 hold=15 max_regression=10
while (($#)); do
    case $1 in
    --quick) dur=3 idle_n=5000 hold=8 ;;
    --max-regression) max_regression=$2; shift ;;
    *) rounds=$1 ;;
    esac
    shift
done

export BENCH_DIR=${BENCH_DIR:-$PWD/target/bench-compare}
rm -rf "$BENCH_DIR"
source scripts/bench-brokers.sh
trap stop_broker EXIT INT TERM
ulimit -n "$(ulimit -Hn)"

target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
bench=$target_dir/release/stompbox-bench
[[ -x "$bench" ]] || cargo build -q --release -p stompbox-bench

# A revision instead of a binary: build it once, beside this checkout, in its own target dir.
if [[ -f $before_arg ]]; then
    before=$(realpath "$before_arg")
else
    commit=$(git rev-parse --verify "$before_arg^{commit}")
    tree=$target_dir/baseline/$commit
    if [[ ! -x $tree/target/release/stompbox ]]; then
        log "building the baseline $before_arg ($commit) in $tree"
        [[ -d $tree ]] || git worktree add --detach "$tree" "$commit" >/dev/null
        (cd "$tree" && cargo build -q --release -p stompbox)
    fi
    before=$tree/target/release/stompbox
fi

# case name, scenario, arguments (the idle case adds the broker's pid itself)
cases=(
    "fanout-10k-10|fanout --publishers 1 --topics 1 --subscribers 10 --rate 10000 --duration $dur"
    "fanout-1x100|fanout --publishers 1 --topics 1 --subscribers 100 --rate 0 --body-size 128 --duration $dur"
    "pairs-1k|pairs --clients 1000 --rate 5000 --duration $dur"
    "idle-tcp|idle --connections $idle_n --hold $hold"
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

python3 scripts/bench_gate.py "$BENCH_DIR" --max-regression "$max_regression"
