#!/usr/bin/env bash
# The hostile-input run of docs/security.md: a release Stompbox on private loopback ports,
# attacked for a while by `stompbox-bench hostile` (oversized and malformed frames, header
# floods, slowloris, an oversized WebSocket message, a connection flood from one address)
# while a client from another loopback address keeps doing round trips and new connections.
#
#   scripts/hostile.sh [--seconds N] [--flood N] [-- BROKER-FLAG...]
#
# Exits non-zero if the well-behaved client was not served throughout. The report is printed
# and written to $BENCH_DIR/hostile.json (default target/bench). A measurement, not a test:
# run it on a quiet machine (it is not part of scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$PWD
log() { printf 'hostile: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/process.sh
source "$root_dir/scripts/lib/process.sh"

seconds=20
flood=4000
while (($#)); do
    case $1 in
    --seconds) seconds=$2; shift ;;
    --flood) flood=$2; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
    esac
    shift
done

export BENCH_DIR=${BENCH_DIR:-$root_dir/target/bench}
mkdir -p "$BENCH_DIR"
cargo build --release -q -p stompbox -p stompbox-bench
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

run_dir=$(mktemp -d)
stomp_port=$(free_port)
http_port=$(free_port)
# The flood holds thousands of sockets: the broker may hold up to the machine's hard limit.
ulimit -n "$(ulimit -Hn)"
spawn_listening stompbox "$run_dir" "$stomp_port" "$target_dir/release/stompbox" \
    --stomp-listen "127.0.0.1:$stomp_port" --http-listen "127.0.0.1:$http_port" \
    --data-dir "$run_dir/data" --log warn "$@"
broker_pid=$(read_pid "$run_dir/pid")
stop() {
    kill "$broker_pid" 2>/dev/null || true
    rm -rf "$run_dir"
}
trap stop EXIT
log "broker pid $broker_pid: STOMP $stomp_port, HTTP $http_port, flags: $*"
"$target_dir/release/stompbox-bench" hostile --stomp "127.0.0.1:$stomp_port" \
    --http "127.0.0.1:$http_port" --broker-pid "$broker_pid" --seconds "$seconds" \
    --flood "$flood" --json "$BENCH_DIR/hostile.json"
