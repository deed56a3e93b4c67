#!/usr/bin/env python3
"""What topic history costs in memory: resident set of a broker after publishing M messages of
B bytes to each of T topics, with and without a history for them (everything else equal).

    python3 scripts/history-memory.py [--bin target/release/stompbox] [--topics 1000]
        [--messages 100] [--body 200]

Prints one line per run and the difference per topic. Raw STOMP over loopback; no subscribers,
so without history nothing is kept and the difference is the history's own cost."""
import argparse
import os
import re
import socket
import subprocess
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def run(binary, history, topics, messages, body):
    data = tempfile.mkdtemp(prefix="stompbox-histmem-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOMPBOX_")}
    args = [binary, "--stomp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
            "--data-dir", data, f"--topic-history={history}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        ready = proc.stdout.readline()
        port = int(re.search(r"stomp=[^:]+:(\d+)", ready).group(1))
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nlogin:p\n\n\0")
        s.recv(4096)
        payload = b"x" * body
        frame = lambda t: (f"SEND\ndestination:/topic/mem.{t}\ncontent-length:{body}\n\n".encode()
                           + payload + b"\0")
        for t in range(topics):
            s.sendall(frame(t) * messages)
        s.sendall(b"SEND\ndestination:/topic/done\nreceipt:done\n\n\0")
        buf = b""
        while b"receipt-id:done" not in buf:
            buf += s.recv(65536)
        time.sleep(0.5)
        return rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/debug/stompbox")
    p.add_argument("--topics", type=int, default=1000)
    p.add_argument("--messages", type=int, default=100)
    p.add_argument("--body", type=int, default=200)
    a = p.parse_args()
    rule = f"/topic/mem.*={a.messages}/{a.messages * (a.body + 1024)}/1h"
    without = run(a.bin, "", a.topics, a.messages, a.body)
    with_history = run(a.bin, rule, a.topics, a.messages, a.body)
    print(f"without history: {without} KiB RSS; with {rule}: {with_history} KiB RSS")
    per_topic = (with_history - without) * 1024 / a.topics
    print(f"history: {per_topic:.0f} bytes per topic of {a.messages} x {a.body}-byte messages "
          f"({per_topic / a.messages:.0f} bytes per message)")


if __name__ == "__main__":
    main()
