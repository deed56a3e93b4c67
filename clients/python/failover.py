"""What the Redis failover tests share (tests/test_rcluster_failover.py: a Redis Cluster primary
killed; tests/test_sentinel_failover.py: the primary behind Sentinel killed): chatting through
the failover while counting what was acknowledged and what arrived live, and the recipient's
full sync to check nothing acknowledged is lost."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

import streamed
from conftest import WAIT_S, start_node


def service_or_skip(make):
    """`make()` (a shared Redis of scripts/services.sh), or a skip when it is not running (a
    failure under STOMPBOX_REQUIRE_SERVICES=1)."""
    try:
        return make()
    except Exception as e:  # noqa: BLE001 - any reason the service is missing
        if os.environ.get("STOMPBOX_REQUIRE_SERVICES") == "1":
            pytest.fail(str(e))
        pytest.skip(f"SKIPPED: {e}")


@dataclass
class Chat:
    """Three nodes on one Redis and PostgreSQL; a sender on the first and a recipient on the
    second, in one direct conversation; what was acknowledged and what arrived live."""

    nodes: list
    sender: object
    recipient: object
    direct: str
    acked: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)


@contextmanager
def three_nodes_chatting(tmp_path, chat, unique: str, redis_url: str, before: int,
                         extra_args: tuple[str, ...] = (), count: int = 3):
    """A `Chat` whose first `before` messages all arrived live (cross-node delivery works);
    the nodes are stopped on exit. `extra_args`: more flags for each node (`--redis-ca`);
    `count`: the nodes (at least 2: sender and recipient are on different ones)."""
    storage = streamed.Storage.create(tmp_path, with_kafka=False)
    args = ("--redis-url", redis_url, *extra_args, *storage.broker_args())
    nodes = []
    try:
        for i in range(count):
            nodes.append(start_node(tmp_path, *args, data_dir=tmp_path / f"node{i}"))
        for node in nodes:
            wait_ready(node)
        sender = chat(f"sender-{unique}", target=nodes[0])
        recipient = chat(f"recipient-{unique}", target=nodes[1])
        direct = sender.create("DIRECT", [recipient.login])["conversationId"]
        recipient.event("conversations")
        talk = Chat(nodes, sender, recipient, direct)
        for i in range(before):
            talk.acked.append(sender.send_message(f"before {i}", conversation=direct))
        talk.live.extend(m["messageId"] for m in recipient.events("messages", before))
        assert talk.live == talk.acked, "cross-node delivery before the kill"
        yield talk
    finally:
        for node in nodes:
            node.stop()


def wait_ready(node, within_s: float = WAIT_S * 4) -> None:
    """Waits until `node` answers `GET /health/ready` ready, as a load balancer would before
    giving it clients: its subscriber is on Redis, so a message published to a session that
    just subscribed is not missed because the node's first Redis connection was still being
    made (slower over TLS: a handshake per shard)."""
    deadline = time.monotonic() + within_s
    report = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{node.host}:{node.http_port}/health/ready", timeout=5) as reply:
                report = json.loads(reply.read())
        except urllib.error.HTTPError as e:
            report = json.loads(e.read() or b"null")
        if report and report.get("ready"):
            return
        time.sleep(0.05)
    raise AssertionError(f"node on {node.http_port} not ready within {within_s}s: {report}")


def take(session, into: list[str]) -> None:
    into.extend(m["messageId"] for m in session.drain("messages"))


def sync_all(session) -> list[str]:
    """Every message of the user's conversations, by `chat.sync` from the start."""
    got: list[str] = []
    after = "0"
    while True:
        session.call("chat.sync", {"afterMessageId": after})
        done = session.event("sync", WAIT_S * 2)
        page = [m["messageId"] for m in session.drain("messages")]
        got.extend(page)
        if not done.get("more") or not page:
            return got
        after = max(page, key=int)


def chat_until_live(talk: Chat, since: float, within_s: float) -> tuple[list[str], float | None]:
    """Sends one message every ~0.1 s until one sent after `since` (monotonic) reaches the
    recipient live, or `within_s` passed. A send may go unanswered while Redis is away: no
    RECEIPT in time means not acknowledged, so not owed. Returns the messages acknowledged
    meanwhile (also added to `talk.acked`) and the seconds from `since` to the first live one
    (None if none came)."""
    after_kill: list[str] = []
    i = 0
    while time.monotonic() - since < within_s:
        try:
            message_id = talk.sender.send_message(f"during {i}", conversation=talk.direct)
        except AssertionError:
            message_id = None
        i += 1
        if message_id is not None:
            talk.acked.append(message_id)
            after_kill.append(message_id)
        time.sleep(0.1)
        take(talk.recipient, talk.live)
        if any(m in talk.live for m in after_kill):
            return after_kill, time.monotonic() - since
    return after_kill, None


def send_all_live(talk: Chat, label: str, n: int) -> None:
    """Sends `n` messages and asserts each reaches the recipient live."""
    sent = [talk.sender.send_message(f"{label} {i}", conversation=talk.direct) for i in range(n)]
    talk.acked.extend(sent)
    deadline = time.monotonic() + WAIT_S * 2
    while not set(sent) <= set(talk.live) and time.monotonic() < deadline:
        time.sleep(0.05)
        take(talk.recipient, talk.live)
    assert set(sent) <= set(talk.live), f"{label}: live delivery lost {set(sent) - set(talk.live)}"


def assert_none_lost(talk: Chat) -> None:
    """Every acknowledged message arrived live or is in the recipient's sync, and the store
    holds them all."""
    synced = sync_all(talk.recipient)
    missing = [m for m in talk.acked if m not in talk.live and m not in synced]
    assert not missing, f"acknowledged but neither delivered nor synced: {missing}"
    assert set(talk.acked) <= set(synced), "the store lacks acknowledged messages"
