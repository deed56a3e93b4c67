#!/usr/bin/env bash
# Start/stop helpers for scripts/bench.sh: each broker runs as a private instance on its own
# loopback ports, with its own data/log directories under $BENCH_DIR, started and stopped by PID
# (never the system service). Sourced, not executed.

# Ports far from every default, so a system broker or a dev Stompbox cannot be hit by mistake.
SB_STOMP_PORT=${SB_STOMP_PORT:-62613}
SB_HTTP_PORT=${SB_HTTP_PORT:-62674}
RMQ_AMQP_PORT=${RMQ_AMQP_PORT:-62672}
RMQ_STOMP_PORT=${RMQ_STOMP_PORT:-62614}
RMQ_WS_PORT=${RMQ_WS_PORT:-62675}
RMQ_DIST_PORT=${RMQ_DIST_PORT:-62699}
RMQ_EPMD_PORT=${RMQ_EPMD_PORT:-62369}
AMQ_STOMP_PORT=${AMQ_STOMP_PORT:-62615}
# The per-process file limit here is a hard 20,000; brokers get all of it.
BROKER_NOFILE=${BROKER_NOFILE:-20000}

BROKER_PID=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Waits until 127.0.0.1:$1 accepts TCP, up to $2 seconds.
wait_port() {
    local port=$1 limit=${2:-60} i
    for ((i = 0; i < limit * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "port $port did not open within ${limit}s"
    return 1
}

# Installs the Debian packages once; fast when present.
install_peers() {
    local missing=()
    dpkg -s rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
    dpkg -s activemq >/dev/null 2>&1 || missing+=(activemq)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

start_stompbox() {
    local bin=$1 dir=$BENCH_DIR/stompbox
    rm -rf "$dir" && mkdir -p "$dir"
    (
        ulimit -n "$BROKER_NOFILE"
        exec "$bin" --stomp-listen "127.0.0.1:$SB_STOMP_PORT" --http-listen "127.0.0.1:$SB_HTTP_PORT" \
            --log warn --max-connections 19900 --data-dir "$dir/data"
    ) >"$dir/stdout" 2>"$dir/stderr" &
    BROKER_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q "stompbox ready" "$dir/stdout" 2>/dev/null && break
        kill -0 "$BROKER_PID" 2>/dev/null || { cat "$dir/stderr" >&2; return 1; }
        sleep 0.1
    done
    log "stompbox pid $BROKER_PID: $(cat "$dir/stdout")"
}

start_rabbitmq() {
    local dir=$BENCH_DIR/rabbitmq
    rm -rf "$dir" && mkdir -p "$dir/mnesia" "$dir/log"
    cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$RMQ_AMQP_PORT
stomp.listeners.tcp.1 = 127.0.0.1:$RMQ_STOMP_PORT
web_stomp.tcp.port = $RMQ_WS_PORT
web_stomp.tcp.ip = 127.0.0.1
log.console = false
log.file.level = warning
CONF
    echo '[rabbitmq_stomp,rabbitmq_web_stomp].' >"$dir/enabled_plugins"
    (
        ulimit -n "$BROKER_NOFILE"
        export HOME=$dir
        export RABBITMQ_NODENAME=stompboxbench@localhost
        export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        export RABBITMQ_NODE_PORT=$RMQ_AMQP_PORT
        export RABBITMQ_DIST_PORT=$RMQ_DIST_PORT
        export ERL_EPMD_PORT=$RMQ_EPMD_PORT
        export ERL_EPMD_ADDRESS=127.0.0.1
        export RABBITMQ_MNESIA_BASE=$dir/mnesia
        export RABBITMQ_LOG_BASE=$dir/log
        export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
        export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
        export RABBITMQ_PID_FILE=$dir/pid
        # exec so $! is the node's own process (the script execs erl in turn).
        exec /usr/lib/rabbitmq/bin/rabbitmq-server
    ) >"$dir/stdout" 2>"$dir/stderr" &
    BROKER_PID=$!
    wait_port "$RMQ_STOMP_PORT" 120 && wait_port "$RMQ_WS_PORT" 30 || { tail -20 "$dir/stdout" "$dir/stderr" >&2; return 1; }
    log "rabbitmq pid $BROKER_PID ($(cat "$dir/pid" 2>/dev/null || echo ?))"
}

start_activemq() {
    local dir=$BENCH_DIR/activemq
    rm -rf "$dir" && mkdir -p "$dir/data"
    cp /etc/activemq/instances-available/main/log4j2.properties "$dir/"
    # Non-persistent: Stompbox keeps messages in memory too, so neither pays for a disk.
    cat >"$dir/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="bench"
          persistent="false" dataDirectory="$dir/data">
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp+nio://127.0.0.1:$AMQ_STOMP_PORT?transport.hbGracePeriodMultiplier=2.0"/>
    </transportConnectors>
  </broker>
</beans>
XML
    (
        ulimit -n "$BROKER_NOFILE"
        exec java -Xms512M -Xmx2G -Dorg.apache.activemq.UseDedicatedTaskRunner=false \
            -Dactivemq.home=/usr/share/activemq -Dactivemq.base="$dir" -Dactivemq.conf="$dir" \
            -Dactivemq.data="$dir/data" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
            -jar /usr/share/activemq/bin/activemq.jar start "xbean:file:$dir/activemq.xml"
    ) >"$dir/stdout" 2>"$dir/stderr" &
    BROKER_PID=$!
    wait_port "$AMQ_STOMP_PORT" 120 || { tail -20 "$dir/stdout" "$dir/stderr" >&2; return 1; }
    log "activemq pid $BROKER_PID"
}

# The process whose RSS counts: RabbitMQ's script may leave a shell above beam.smp.
rss_pid() {
    local pid=$1 child
    child=$(pgrep -P "$pid" -x beam.smp 2>/dev/null | head -1)
    echo "${child:-$pid}"
}

# Stops the broker by PID: TERM, then KILL after 20 s.
stop_broker() {
    local pid=${1:-$BROKER_PID} i
    [[ -n "$pid" ]] || return 0
    local children
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" $children 2>/dev/null || return 0
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    BROKER_PID=""
    # Erlang starts an epmd daemon for our private node on our private port; stop it too.
    ERL_EPMD_PORT=$RMQ_EPMD_PORT epmd -kill >/dev/null 2>&1 || true
}
