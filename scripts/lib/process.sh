# Sourced by scripts/services.sh and scripts/cluster.sh: start, find and stop the processes they
# own by recorded PID (never by name), and install Debian packages. The caller defines `log`
# and may set `ready_timeout` (seconds) before sourcing.
: "${ready_timeout:=30}"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A killed process stays visible until its parent (often PID 1 here) reaps it: a zombie (Z) or
# dying (X) process counts as gone.
alive() {
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != [ZX] ]]
}

read_pid() { [[ -f "$1" ]] && head -n1 "$1" || true; }

listening() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# spawn_listening NAME DIR PORT CMD...: starts CMD in its own session, logging to DIR/NAME.log,
# records its pid in DIR/pid and the port in DIR/port, and waits until PORT accepts.
spawn_listening() {
    local name=$1 dir=$2 port=$3 pid
    shift 3
    mkdir -p "$dir"
    echo "$port" >"$dir/port"
    setsid "$@" >"$dir/$name.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/pid"
    for _ in $(seq 1 $((ready_timeout * 10))); do
        listening "$port" && return
        alive "$pid" || break
        sleep 0.1
    done
    log "$name did not start listening on $port"
    tail -n 30 "$dir/$name.log" >&2
    exit 1
}

# recorded_running DIR: the pid in DIR/pid lives and the port in DIR/port accepts.
recorded_running() {
    local port
    port="$(cat "$1/port" 2>/dev/null || true)"
    alive "$(read_pid "$1/pid")" && [[ -n "$port" ]] && listening "$port"
}

# stop_recorded NAME DIR: SIGTERM the pid in DIR/pid, SIGKILL after 5 s.
stop_recorded() {
    local name=$1 dir=$2 pid
    pid="$(read_pid "$dir/pid")"
    if alive "$pid"; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 50); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then kill -KILL "$pid"; fi
    fi
    rm -f "$dir/pid"
}

# Installs Debian packages; waits for a dpkg lock another install holds instead of failing.
apt_install() {
    if (( EUID != 0 )); then
        log "not root: install the Debian package(s) $* first"
        exit 1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600)
    "${apt[@]}" update
    "${apt[@]}" install -y "$@" >/dev/null
}

