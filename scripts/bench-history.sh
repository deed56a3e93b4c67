#!/usr/bin/env bash
# Deliveries/s with and without a topic history (docs/benchmarks.md "Topic history"): fanout 1 publisher ->
# 1 topic -> 100 subscribers, unbounded rate, 10 s, a fresh broker per run, alternating off/on.
# Usage: scripts/bench-history.sh target/release/stompbox target/release/stompbox-bench [ROUNDS=2]
# With REDIS_URL=redis://... the broker is a cluster node on that Redis, so the history is the
# shared one (in Redis); after each run with history its Redis memory is shown, then its keys
# are deleted.
set -euo pipefail
bin=$1 bench=$2 rounds=${3:-2}
out=/tmp/history-bench; mkdir -p $out
ulimit -n "$(ulimit -Hn)"
cluster=()
[[ -n ${REDIS_URL:-} ]] && cluster=(--redis-url "$REDIS_URL")
redis_memory() { redis-cli -u "$REDIS_URL" info memory | grep '^used_memory:' | tr -d '\r'; }
for round in $(seq 1 $rounds); do
  for mode in off on; do
    args=(--stomp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --data-dir $(mktemp -d) --drain-delay 0s --drain-period 0s "${cluster[@]}")
    [[ $mode == on ]] && args+=(--topic-history '/topic/bench.*=1000/1048576/1h')
    [[ -n ${REDIS_URL:-} ]] && echo "$mode-$round before: $(redis_memory)"
    $bin "${args[@]}" >$out/broker.out 2>$out/broker.err &
    pid=$!
    for _ in $(seq 100); do grep -q "stompbox ready" $out/broker.out 2>/dev/null && break; sleep 0.1; done
    port=$(grep -o 'stomp=[^ ]*' $out/broker.out | head -1 | sed 's/.*://')
    $bench fanout --publishers 1 --topics 1 --subscribers 100 --rate 0 --duration 10 --stomp 127.0.0.1:$port \
      --broker-pid $pid --json $out/$mode-$round.json >$out/$mode-$round.log 2>&1 || true
    kill $pid; wait $pid 2>/dev/null || true
    python3 -c "import json;o=json.load(open('$out/$mode-$round.json'));print('$mode-$round', {k:o[k] for k in o if k in ('deliveries_per_s','delivered','lost','rss_bytes')}, 'p50',o['latency']['p50_us'],'p99',o['latency']['p99_us'])"
    if [[ -n ${REDIS_URL:-} ]]; then
      echo "$mode-$round after: $(redis_memory) $(redis-cli -u "$REDIS_URL" --scan --pattern 'sbx:h?:{bench.*' | wc -l) history keys"
      redis-cli -u "$REDIS_URL" --scan --pattern 'sbx:h?:{bench.*' | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
    fi
  done
done
