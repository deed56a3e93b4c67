#!/usr/bin/env python3
"""How a drain spreads its session closes: N STOMP sessions on a broker, SIGTERM, when each
ERROR arrives. Usage: scripts/drain-spread.py BINARY N PERIOD (e.g. target/debug/stompbox 2000 2s)."""
import os, selectors, tempfile, signal, socket, subprocess, sys, time
bin_, n, period = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = {k: v for k, v in os.environ.items() if not k.startswith("STOMPBOX_")}
p = subprocess.Popen([bin_, "--stomp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
    "--data-dir", tempfile.mkdtemp(), "--drain-delay", "0", "--drain-period", period,
    "--max-connections-per-ip", "100000", "--connect-rate-per-ip", "100000", "--connect-burst-per-ip", "100000",
    "--max-unauthenticated-per-ip", "100000", "--log", "warn"], stdout=subprocess.PIPE, env=env)
line = p.stdout.readline().decode()
port = int(line.split("stomp=")[1].split()[0].rsplit(":", 1)[1])
sel = selectors.DefaultSelector(); socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nlogin:u%d\nheart-beat:0,0\n\n\0" % i)
    socks.append(s)
for s in socks:
    buf = b""
    while b"\0" not in buf: buf += s.recv(4096)
    s.setblocking(False); sel.register(s, selectors.EVENT_READ)
t0 = time.monotonic(); p.send_signal(signal.SIGTERM); times = []
while len(times) < n and time.monotonic() - t0 < 30:
    for key, _ in sel.select(1):
        try: data = key.fileobj.recv(4096)
        except OSError: data = b""
        if b"ERROR" in data or not data:
            times.append(time.monotonic() - t0); sel.unregister(key.fileobj)
p.wait()
times.sort()
print(f"{n} sessions, drain-period {period}: first ERROR {times[0]*1000:.0f} ms, median {times[len(times)//2]*1000:.0f} ms, last {times[-1]*1000:.0f} ms after SIGTERM; exit {p.returncode}")
