#!/usr/bin/env python3
"""What the push path costs (issue 13): notifications/s one node sends to a local provider, and
chat send→delivered latency with push off against push on while a push flood is being sent.

Runs the broker (release build), `push-testbed` (local FCM that checks the OAuth grant's RS256
signature and the bearer on each send) and `stompbox-chat-bench` on this machine:

  cargo build --release -p stompbox -p stompbox-bench -p push-testbed
  scripts/bench-push.py [--users 2000] [--rounds 2]

1. Flood: N offline users each register one FCM device (service API), then one message is sent
   to each (service API, 16 at a time). Each user is due one notification; the rate is N over the
   span between the first and the last notification the testbed accepted (the coalescing window
   is not in it). The testbed verifies every request in the same process, on the same 2 cores:
   the figure is a lower bound of what the broker can send.
2. Chat: `stompbox-chat-bench` (200 pairs, 1,000 msgs/s, 15 s) while N messages to offline
   users are sent beside it, against a broker without push and one with push on (where those
   messages become N notifications); alternated.

The flood's rate is bounded by how fast this script injects the messages (HTTP, 16 at a time):
windows fire `--push-coalesce` after they open, so notifications leave at the rate messages
arrive. It is a lower bound of the push path, not its ceiling.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-push-service-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers), timeout=30) as r:
        return json.load(r)


class Testbed:
    def __init__(self, binary: Path, directory: Path):
        info = directory / "testbed.json"
        self.process = subprocess.Popen([str(binary), "--dir", str(directory), "--info", str(info)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not info.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("push-testbed did not start")
            time.sleep(0.05)
        self.info = json.loads(info.read_text())

    def received(self) -> list[dict]:
        return http("GET", self.info["control"] + "/_testbed/received?platform=fcm")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


class Broker:
    def __init__(self, binary: Path, directory: Path, extra: list[str]):
        self.stomp, self.http = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http}"
        env = dict(os.environ, STOMPBOX_DRAIN_DELAY="0", STOMPBOX_DRAIN_PERIOD="0")
        self.log = open(directory / "broker.log", "wb")
        self.process = subprocess.Popen(
            [str(binary), "--stomp-listen", f"127.0.0.1:{self.stomp}", "--http-listen", f"127.0.0.1:{self.http}",
             "--data-dir", str(directory / "data"), "--service-token", TOKEN, "--chat-rate", "0", *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.base + "/health/ready", timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit(f"broker did not start; see {directory / 'broker.log'}")
                time.sleep(0.1)

    def api(self, method: str, path: str, body: dict) -> dict:
        return http(method, self.base + path, body, TOKEN)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()
        self.log.close()


def flood(broker: Broker, testbed: Testbed, users: int, tag: str, push: bool = True) -> dict:
    """Registers `users` offline FCM devices (with `push`), sends each user one message, waits
    for the notifications; returns counts and the rate. Without `push` only the messages."""
    names = [f"{tag}-u{i}" for i in range(users)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        if push:
            list(pool.map(lambda u: broker.api("POST", "/api/push/devices",
                                               {"asUser": u, "platform": "fcm", "token": f"tok-{u}"}), names))
        started = time.time()
        list(pool.map(lambda u: broker.api("POST", "/api/messages",
                                           {"senderId": f"{tag}-sender", "recipientId": u, "content": "hi"}), names))
    sent_s = time.time() - started
    if not push:
        return {"users": users, "messages_s": round(sent_s, 2)}
    wanted = {f"tok-{u}" for u in names}
    deadline = time.monotonic() + 120
    while True:
        got = [r for r in testbed.received() if r["device"] in wanted]
        if len(got) >= users or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    devices = [r["device"] for r in got]
    at = sorted(r["at_ms"] for r in got)
    span = (at[-1] - at[0]) / 1000 if len(at) > 1 else float("nan")
    return {"users": users, "notifications": len(got), "duplicates": len(devices) - len(set(devices)),
            "messages_s": round(sent_s, 2), "span_s": round(span, 2),
            "per_s": round(len(got) / span) if span and span == span else None}


def chat_bench(binary: Path, broker: Broker, prefix: str) -> str:
    out = subprocess.run([str(binary), "--stomp", f"127.0.0.1:{broker.stomp}", "--pairs", "200", "--rate", "1000",
                          "--seconds", "15", "--prefix", prefix], capture_output=True, text=True, check=True).stdout
    lines = [l for l in out.splitlines() if l.startswith(("sent ", "send→delivered", "send→stored"))]
    return " | ".join(re.sub(r"\s+", " ", l) for l in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--target", default=str(REPO / "target" / "release"))
    args = parser.parse_args()
    target = Path(args.target)
    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    testbed = Testbed(target / "push-testbed", work / "testbed")
    push_flags = [*testbed.info["broker_flags"], "--push-coalesce", "500ms"]
    try:
        for rnd in range(args.rounds):
            d = work / f"flood{rnd}"
            d.mkdir()
            broker = Broker(target / "stompbox", d, push_flags)
            try:
                print(f"round {rnd} flood:", json.dumps(flood(broker, testbed, args.users, f"f{rnd}")), flush=True)
            finally:
                broker.close()
            for push in (False, True):
                d = work / f"chat{rnd}-{'on' if push else 'off'}"
                d.mkdir()
                broker = Broker(target / "stompbox", d, push_flags if push else [])
                try:
                    # The same messages to offline users beside the chat load either way; with push
                    # on they also become notifications, so the difference is the push path.
                    beside = threading.Thread(target=flood, args=(broker, testbed, args.users, f"c{rnd}{int(push)}", push))
                    beside.start()
                    line = chat_bench(target / "stompbox-chat-bench", broker, f"r{rnd}{int(push)}")
                    beside.join()
                    print(f"round {rnd} chat + {args.users} messages to offline users, push {'on' if push else 'off'}: {line}", flush=True)
                finally:
                    broker.close()
    finally:
        testbed.close()


if __name__ == "__main__":
    main()
