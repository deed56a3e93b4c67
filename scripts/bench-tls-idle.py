#!/usr/bin/env python3
"""Memory of an idle STOMP session over TCP and over TLS (docs/security/tls.md, "Cost").

    scripts/bench-tls-idle.py [N] [BINARY]     (default 2000 sessions, target/debug/stompbox)

Starts a broker with --stomp-tls-listen and the test PKI (scripts/test-certs.sh), opens N
sessions that send CONNECT and stay idle (heart-beats off), first over plain TCP then over TLS,
and prints the broker's RSS growth per session. Loopback only; bounded by N. Standard library
only."""

import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
binary = sys.argv[2] if len(sys.argv) > 2 else str(REPO / "target/debug/stompbox")
work = Path(tempfile.mkdtemp(prefix="stompbox-tls-idle-"))
certs = Path(subprocess.run([str(REPO / "scripts/test-certs.sh"), str(work / "certs")], check=True,
                            capture_output=True, text=True).stdout.strip())
broker = subprocess.Popen(
    [binary, "--stomp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", str(work / "data"),
     "--stomp-tls-listen", "127.0.0.1:0", "--tls-cert", str(certs / "server.pem"),
     "--tls-key", str(certs / "server-key.pem"), "--heartbeat", "0,0"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
ready = broker.stdout.readline().decode()
ports = {"tcp": int(re.search(r"stomp=\S+:(\d+)", ready)[1]), "tls": int(re.search(r"stomp_tls=\S+:(\d+)", ready)[1])}
context = ssl.create_default_context(cafile=str(certs / "ca.pem"))


def rss_kib() -> int:
    for line in open(f"/proc/{broker.pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def session(kind: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", ports[kind]), timeout=10)
    if kind == "tls":
        sock = context.wrap_socket(sock, server_hostname="localhost")
    sock.sendall(b"CONNECT\naccept-version:1.2\nlogin:idle\nheart-beat:0,0\n\n\0")
    reply = b""
    while b"\0" not in reply:
        reply += sock.recv(4096)
    assert reply.startswith(b"CONNECTED"), reply
    return sock


try:
    for kind in ("tcp", "tls"):
        warm = [session(kind) for _ in range(50)]  # allocator arenas and tasks warmed up
        time.sleep(1)
        before = rss_kib()
        socks = [session(kind) for _ in range(n)]
        time.sleep(2)
        grown = rss_kib() - before
        print(f"{kind}: {n} idle sessions, RSS +{grown} KiB, {grown / n:.1f} KiB per session")
        for sock in socks + warm:
            sock.close()
        time.sleep(2)
finally:
    broker.terminate()
    broker.wait()
