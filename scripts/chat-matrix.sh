#!/usr/bin/env bash
# The chat contract in every deployment: the python chat suites (clients/python/tests/test_chat_*.py),
# unchanged, once per mode of clients/python/deployment.py, the modes in parallel.
#
#   scripts/chat-matrix.sh [MODE...]     default: postgres streamed cluster cluster-streamed rcluster
#                                        (embedded is the default mode of the whole python run)
#
# Each mode is its own pytest process with its own brokers, databases, topics, sinks and (in the
# cluster modes) private Redis (rcluster: a private Redis Cluster); PostgreSQL and Kafka are the ones `scripts/services.sh up`
# started (shared). Prints each mode's test count and wall time; a failed mode's output in full.
# Logs stay in .run/chat-matrix/<mode>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

modes=("$@")
if (( ${#modes[@]} == 0 )); then
    modes=(postgres streamed cluster cluster-streamed rcluster)
fi
log_dir=.run/chat-matrix
mkdir -p "$log_dir"
python=../../.venv/bin/python

pids=()
for mode in "${modes[@]}"; do
    (
        started=$SECONDS
        cd clients/python
        status=0
        STOMPBOX_TEST_MODE=$mode $python -m pytest -q tests/test_chat_*.py \
            >"../../$log_dir/$mode.log" 2>&1 || status=$?
        echo "wall ${mode} $((SECONDS - started))s" >>"../../$log_dir/$mode.log"
        exit "$status"
    ) &
    pids+=($!)
done

failed=()
for i in "${!modes[@]}"; do
    mode=${modes[$i]}
    if ! wait "${pids[$i]}"; then
        failed+=("$mode")
    fi
done

for mode in "${modes[@]}"; do
    log="$log_dir/$mode.log"
    # pytest's last summary line ("59 passed, 1 skipped in 40.1s") and our wall time.
    summary=$(grep -E '(passed|failed|error).* in [0-9.]+s' "$log" | tail -1 | tr -d '=' || true)
    printf '%-17s %-60s %s\n' "$mode" "${summary:-no summary}" "$(grep -o '[0-9]*s$' <(tail -1 "$log"))"
done
for mode in "${failed[@]}"; do
    printf '\n==== chat suite FAILED in mode %s (%s) ====\n' "$mode" "$log_dir/$mode.log"
    cat "$log_dir/$mode.log"
done
(( ${#failed[@]} == 0 ))
