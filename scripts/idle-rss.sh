#!/usr/bin/env bash
# One idle-connection RSS run (issue 17 item 1): starts a release broker on fresh ports and a
# fresh data directory, holds N connections (each its own chat user subscribed to its
# /user/queue/messages, 10 s heart-beats) with `stompbox-bench idle`, prints the bench's JSON
# line and the load average, and stops the broker.
#
#   scripts/idle-rss.sh tcp|ws [connections] [broker binary]
#
# Extra environment for the broker only (e.g. LD_PRELOAD to compare allocators) goes in
# BROKER_ENV, e.g. BROKER_ENV='LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'.
set -euo pipefail
cd "$(dirname "$0")/.."
transport=${1:?tcp or ws}
connections=${2:-19000}
bin=${3:-target/release/stompbox}
bench=${BENCH:-target/release/stompbox-bench}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sport=$(free_port); hport=$(free_port)
data=$(mktemp -d /tmp/idle-rss.XXXXXX)
ulimit -n 20000
env ${BROKER_ENV:-} "$bin" --stomp-listen 127.0.0.1:$sport --http-listen 127.0.0.1:$hport \
    --log warn --max-connections 19900 --data-dir "$data" >"$data/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
# The baseline RSS is read when the bench starts: wait until the broker says it is ready
# (store open, listeners bound), not just until the STOMP port answers. Runs that started at
# the first answer began ≈ 5 MB lower and counted ≈ 250 B per connection of startup as growth.
ready=
for _ in $(seq 300); do
    if curl -fs "http://127.0.0.1:$hport/health/ready" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
[ -n "$ready" ] || { echo "broker not ready after 30 s" >&2; cat "$data/broker.log" >&2; exit 1; }
# and a second for the startup's own allocations (store caches, the timer task) to settle.
sleep 1
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)  bin: $bin  env: ${BROKER_ENV:-none}  start rss: $(awk '/VmRSS/{print $2}' /proc/$pid/status) KiB" >&2
"$bench" idle --stomp 127.0.0.1:$sport --ws ws://127.0.0.1:$hport/ws \
    --transport "$transport" --connections "$connections" --hold ${HOLD:-10} --broker-pid $pid \
    --topic-template /user/queue/messages --login-template 'u{i}' 2>&1 | tail -n 40
