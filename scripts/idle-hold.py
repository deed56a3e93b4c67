#!/usr/bin/env python3
"""Usage: idle-hold.py STOMP_PORT N BROKER_PID HOLD_S

Hold N idle STOMP connections (TCP): CONNECT with heart-beat:10000,10000, SUBSCRIBE
/user/queue/messages with a receipt, then beat. Prints broker RSS growth per held connection
(VmRSS from /proc/PID/status). Connections the broker refused (admission limits of a slow
debug build) are dropped and not counted."""
import socket, sys, time

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def beat(socks):
    alive = []
    for t in socks:
        try:
            t.send(b"\n")
            alive.append(t)
        except BlockingIOError:
            alive.append(t)
        except OSError:
            t.close()
    return alive

port, n, pid, hold = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
before = rss_kib(pid)
socks = []
for i in range(n):
    src = f"127.{1 + i // 10000}.{(i // 100) % 100}.{i % 100 + 1}"
    s = socket.create_connection(("127.0.0.1", port), source_address=(src, 0))
    s.sendall(f"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:u{i}\nheart-beat:10000,10000\n\n\0"
              f"SUBSCRIBE\nid:s\ndestination:/user/queue/messages\nreceipt:r\n\n\0".encode())
    socks.append(s)
    if i % 500 == 499:
        socks = beat(socks)
held = []
for s in socks:
    buf = b""
    s.settimeout(60)
    try:
        while b"receipt-id:r" not in buf:
            c = s.recv(4096)
            if not c:
                raise OSError("closed")
            buf += c
    except OSError:
        s.close()
        continue
    s.setblocking(False)
    held.append(s)
    if len(held) % 500 == 0:
        held = beat(held)
t0 = time.time()
while time.time() - t0 < hold:
    held = beat(held)
    for s in held:
        try:
            s.recv(65536)
        except (BlockingIOError, OSError):
            pass
    time.sleep(2)
after = rss_kib(pid)
print(f"asked={n} held={len(held)} rss_before_kib={before} rss_after_kib={after} "
      f"bytes_per_conn={(after - before) * 1024 / max(len(held), 1):.0f}")
