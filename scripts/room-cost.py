#!/usr/bin/env python3
"""Redis traffic per GROUP chat message on a 3-node cluster, by group size (issue 16, room
channels): the PUBLISH commands Redis ran and the bytes it took in and sent out, per message.

    scripts/room-cost.py [--sizes 10,100,1000] [--messages 20]
    STOMPBOX_BIN=<an older stompbox> scripts/room-cost.py     # the same, for that binary

Each size gets a fresh cluster: 3 nodes on a private redis-server and a fresh PostgreSQL
database (scripts/services.sh up postgres), one member online on each node, the rest of the
group offline. The counters (`INFO commandstats`, `INFO stats`) are reset after the group is
made and its memberships are older than --room-join-grace, then the creator sends --messages
messages and every online member receives them all. Needs the venv (scripts/setup-python.sh)
and `cargo build -p stompbox`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "clients" / "python"))

import stomp  # noqa: E402

import deployment  # noqa: E402
import streamed  # noqa: E402
from conftest import ChatClient, ChatCollector, Client, broker_binary, start_node  # noqa: E402

GRACE = "100ms"


def connect(node, login: str) -> ChatClient:
    conn = stomp.Connection12([node.address], heartbeats=(0, 0))
    listener = ChatCollector()
    conn.set_listener("collector", listener)
    conn.connect(login, "unused", wait=False)
    assert listener.connected.wait(10), f"{login}: no CONNECTED"
    return ChatClient(Client(conn, listener), login).subscribe_all(("messages", "conversations"))


def stat(text: str, name: str) -> int:
    found = re.search(rf"{name}[:=](?:calls=)?(\d+)", text or "")
    return int(found.group(1)) if found else 0


def measure(size: int, messages: int, log_dir: Path) -> dict:
    store = streamed.Storage.create(log_dir, with_kafka=False)
    args = tuple(store.broker_args())
    if streamed.knows_flag(broker_binary(), "--room-join-grace"):
        args += ("--room-join-grace", GRACE)
    cluster = deployment.start_cluster(start_node, log_dir, args, log_dir / f"data-{size}")
    sessions = []
    try:
        tag = uuid.uuid4().hex[:8]
        sessions = [connect(node, f"on{i}-{tag}") for i, node in enumerate(cluster.nodes)]
        members = [s.login for s in sessions[1:]] + [f"off{i}-{tag}" for i in range(size - len(sessions))]
        group = sessions[0].create("GROUP", members, name="cost")["conversationId"]
        for s in sessions[1:]:
            s.event("conversations")
        time.sleep(0.5)  # memberships older than the grace
        cluster.redis.cli("CONFIG", "RESETSTAT")
        sent = [sessions[0].send_message(f"m{i}", conversation=group) for i in range(messages)]
        for s in sessions:
            got = [json.loads(s.frame("messages", 10).body)["messageId"] for _ in sent]
            assert got == sent, f"{s.login} got {got}"
        commands = cluster.redis.cli("INFO", "commandstats")
        stats = cluster.redis.cli("INFO", "stats")
        return {
            "size": size,
            "publish": stat(commands, "cmdstat_publish") / messages,
            "in_bytes": stat(stats, "total_net_input_bytes") / messages,
            "out_bytes": stat(stats, "total_net_output_bytes") / messages,
        }
    finally:
        for s in sessions:
            s.close()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--messages", type=int, default=20)
    opts = parser.parse_args()
    print(f"binary: {broker_binary()}")
    print("| group size | PUBLISH per message | Redis bytes in per message | Redis bytes out per message |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="room-cost-") as tmp:
        for size in (int(s) for s in opts.sizes.split(",")):
            r = measure(size, opts.messages, Path(tmp))
            print(f"| {r['size']} | {r['publish']:.1f} | {r['in_bytes']:,.0f} | {r['out_bytes']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
