# Sourced by scripts/bench-cluster.sh for `--store streamed` and the `publish` case: a fresh
# streamed store (database, Kafka topic, one stompbox-sink) for a cluster, the CPU time each
# process of the run took, and Redis's own PUBLISH ceiling. The caller defines `log`, has
# sourced nothing else, and runs from the checkout's root (where .run/services lives).

sink_pid=""
sink_node_args=()

# sink_start DIR SINK_BIN: a fresh database and topic on the services' PostgreSQL and tansu, one
# stompbox-sink on them (log in DIR/sink.log); sets sink_node_args to the nodes' store flags.
sink_start() {
    local dir=$1 bin=$2 name db_url topic
    # shellcheck disable=SC1091
    source .run/services.env
    mkdir -p "$dir"
    name="sbc_$(date +%s)_$$"
    /usr/lib/postgresql/15/bin/psql "$STOMPBOX_POSTGRES_URL" -qc "CREATE DATABASE $name"
    db_url="${STOMPBOX_POSTGRES_URL%/*}/$name"
    topic="${name//_/.}"
    RUST_BACKTRACE=0 "$bin" --kafka-brokers "$STOMPBOX_KAFKA_BROKERS" --postgres-url "$db_url" \
        --events-topic "$topic" --dead-letter-topic "$topic.dlt" --group-id "$topic.sink" \
        --log-interval 5s >"$dir/sink.out" 2>"$dir/sink.log" </dev/null &
    sink_pid=$!
    local _
    for _ in $(seq 100); do grep -q "stompbox-sink ready" "$dir/sink.out" && break; sleep 0.1; done
    grep -q "stompbox-sink ready" "$dir/sink.out" || { log "stompbox-sink not ready; see $dir/sink.log"; exit 1; }
    log "streamed store: database $name, topic $topic, sink pid $sink_pid"
    sink_node_args=(--postgres-url "$db_url" --kafka-brokers "$STOMPBOX_KAFKA_BROKERS" --kafka-topic "$topic")
}

# The sink this script started, by its PID. Its database stays (a few MB per run) until
# `scripts/services.sh down`.
sink_stop() {
    [[ -n $sink_pid ]] || return 0
    kill -TERM "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
    sink_pid=""
}

# "NAME PID TICKS" per process of the run (utime+stime of all its threads, /proc/PID/stat
# fields 14 and 15), and "machine - TICKS" for all the CPUs' busy time (/proc/stat): nodes
# (from cluster.env), the sink, PostgreSQL's postmaster and every backend, tansu, Redis.
cpu_snapshot() {
    local pid i=0 pg
    for pid in $STOMPBOX_NODE_PIDS; do
        echo "node$i $pid $(proc_ticks "$pid")"
        i=$((i + 1))
    done
    [[ -n $sink_pid ]] && echo "sink $sink_pid $(proc_ticks "$sink_pid")"
    pg=$(head -n1 .run/services/postgres/pid)
    for pid in "$pg" $(pgrep -P "$pg"); do echo "postgres $pid $(proc_ticks "$pid")"; done
    pid=$(head -n1 .run/services/tansu/pid) && echo "tansu $pid $(proc_ticks "$pid")"
    pid=$(head -n1 .run/services/redis/pid) && echo "redis $pid $(proc_ticks "$pid")"
    awk '/^cpu / { print "machine -", $2 + $3 + $4 + $7 + $8 }' /proc/stat
    date +%s.%N | sed 's/^/wall - /'
}

proc_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat" # fields 14 and 15 of the whole line
}

# cpu_report BEFORE_FILE: CPU seconds per process name over the run (a backend that exited
# meanwhile is missed; one that started counts from 0), and the share of the 2 cores.
cpu_report() {
    cpu_snapshot | python3 -c '
import os, sys
hz = os.sysconf("SC_CLK_TCK")
def read(lines):
    return {(n, p): float(t) for n, p, t in (l.split() for l in lines if l.strip())}
before, after = read(open(sys.argv[1])), read(sys.stdin)
wall = after[("wall", "-")] - before[("wall", "-")]
cpus = os.cpu_count()
per = {}
for (name, pid), ticks in after.items():
    if name != "wall":
        per[name] = per.get(name, 0) + ticks - before.get((name, pid), 0)
machine = per.pop("machine") / hz
print(f"CPU over the run ({wall:.1f} s wall, {cpus} CPUs = {wall * cpus:.1f} CPU-s):")
for name, ticks in per.items():
    print(f"  {name:9} {ticks / hz:7.2f} s  {100 * ticks / hz / wall:5.1f} % of a core")
ours = sum(per.values()) / hz
print(f"  listed    {ours:7.2f} s;  machine busy {machine:.2f} s ({100 * machine / wall / cpus:.0f} % of all CPUs); the rest (bench, other work) {machine - ours:.2f} s")
' "$1"
}

# redis_publish_ceiling URL: redis-benchmark PUBLISH of 300-byte payloads to a channel two
# redis-cli subscribers read, unpipelined and pipelined 16 and 64 deep.
redis_publish_ceiling() {
    local url=$1 host port subs=() p
    host=${url#redis://}; host=${host%/}; port=${host##*:}; host=${host%:*}
    for _ in 1 2; do
        redis-cli -h "$host" -p "$port" subscribe sbx-bench-ceiling >/dev/null &
        subs+=($!)
    done
    sleep 0.5
    for p in 1 16 64; do
        # -q still prints its progress, \r-separated: the last line only, without the payload.
        printf 'PUBLISH, 300 B, 4 connections, pipeline %2d: ' "$p"
        redis-benchmark -h "$host" -p "$port" -n 200000 -c 4 -P "$p" -q \
            PUBLISH sbx-bench-ceiling "$(head -c 300 /dev/zero | tr '\0' x)" |
            tr '\r' '\n' | tail -n 1 | sed 's/.*: \([0-9.]* requests per second\)/\1/'
    done
    kill "${subs[@]}" 2>/dev/null || true
    wait "${subs[@]}" 2>/dev/null || true
}

# Each node's cross-node counters after a run (stompbox_cluster_* from /metrics): published,
# dropped (the publisher's queue was full), received.
cluster_counters() {
    local ws i=0
    for ws in $STOMPBOX_NODE_WS; do
        ws=${ws#ws://}
        echo "node$i: $(curl -s "http://${ws%/ws}/metrics" | grep '^stompbox_cluster_[a-z_]*total' | paste -sd' ')"
        i=$((i + 1))
    done
}
