"""Exact chat sync in a cluster (issue 18): three nodes on Redis + Kafka + a sink + PostgreSQL
(and again on Redis + PostgreSQL alone), one node's wall clock 2 s ahead and one 2 s behind (libfaketime, scripts/setup-faketime.sh:
the broker has no setting to lie about its clock), the sink paused for 5 s mid-run. Senders
send through every node while readers hop from node to node at random, each time syncing from
where they were — never rewinding. At the end every reader holds every message of its
conversations exactly once, placed in the conversation's one order.

Against a broker without the cursor (`STOMPBOX_BIN=<main's stompbox>`: `chat.sync` refuses a
`cursor`), the readers fall back to what such a broker offers, `afterMessageId` = the largest id
seen, and lose messages: ids from the skewed nodes do not sort in the order messages were
stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import stomp

import deployment
import streamed
from conftest import WAIT_S, ChatClient, ChatCollector, Client, start_node

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
# The three nodes' clocks: true, 2 s ahead, 2 s behind.
SKEWS = (None, "+2s", "-2s")
# How long senders send; the sink is paused from PAUSE_AT for PAUSE_S of it.
SEND_S = 9.0
PAUSE_AT_S = 1.5
PAUSE_S = 5.0
# Without a sink (PostgreSQL alone) nothing is paused: the skew alone is the test.
SEND_S_WITHOUT_SINK = 5.0
# A reader stays on a node this long (uniform) before hopping.
STAY_S = (0.1, 0.8)
# A sync waits at most this for its answer: the streamed store's barrier gives up after 5 s
# while the sink is stopped, answering UNAVAILABLE.
SYNC_WAIT_S = 8.0
# After the senders stop: time for the last syncs (the sink catches up within a second or two).
SETTLE_S = 20.0


def skewed(skew: str | None) -> dict[str, str]:
    if skew is None:
        return {}
    # The monotonic clock stays true: tokio's timers are not what is being skewed.
    return {"LD_PRELOAD": str(FAKETIME), "FAKETIME": skew, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


@pytest.fixture(params=["streamed", "postgres"])
def cluster(request, tmp_path):
    """Three nodes on `request.param`: Kafka + the sink + PostgreSQL (positions given by the
    sink), or PostgreSQL alone (positions given under the conversation's row lock)."""
    found = streamed.services()
    if "STOMPBOX_POSTGRES_URL" not in found or "STOMPBOX_KAFKA_BROKERS" not in found:
        if os.environ.get("STOMPBOX_REQUIRE_SERVICES") == "1":
            pytest.fail("PostgreSQL/Kafka not running: scripts/services.sh up")
        pytest.skip("SKIPPED: PostgreSQL/Kafka not running (scripts/services.sh up)")
    if not FAKETIME.exists():
        if os.environ.get("STOMPBOX_REQUIRE_SERVICES") == "1":
            pytest.fail("libfaketime missing: scripts/setup-faketime.sh")
        pytest.skip("SKIPPED: libfaketime missing (scripts/setup-faketime.sh)")
    storage = streamed.Storage.create(tmp_path, with_kafka=request.param == "streamed")
    with cluster_nodes(tmp_path, storage, [skewed(skew) for skew in SKEWS]) as nodes:
        yield nodes, storage


@contextlib.contextmanager
def cluster_nodes(log_dir: Path, storage: streamed.Storage, envs: list[dict[str, str]]):
    """One node per entry of `envs` (variables added to its environment) on a private Redis and
    `storage`; all stopped at the end, with the storage's sink."""
    redis = deployment.Redis()
    args = ("--redis-url", redis.url, *storage.broker_args())
    nodes = []
    try:
        for i, env in enumerate(envs):
            nodes.append(start_node(log_dir, *args, data_dir=log_dir / f"node{i}", env_extra=env))
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        redis.stop()
        if storage.sink is not None:
            storage.sink.stop()


def session(node, login: str) -> ChatClient:
    conn = stomp.Connection12([node.address], heartbeats=(0, 0), reconnect_attempts_max=1)
    listener = ChatCollector()
    conn.set_listener("collector", listener)
    conn.connect(login, "unused", wait=False)
    assert listener.connected.wait(WAIT_S), f"{login}: no CONNECTED from {node.address}"
    return ChatClient(Client(conn, listener), login).subscribe_all(("messages", "sync", "errors", "conversations"))


class Reader:
    """A user who hops nodes and syncs from where it was. `exact`: with a cursor (and `seen`);
    otherwise from the largest id seen, as a broker without the cursor allows."""

    def __init__(self, login: str, exact: bool):
        self.login = login
        self.exact = exact
        self.held: dict[str, dict] = {}  # messageId -> message
        self.copies: Counter = Counter()  # messageId -> times delivered (live and replayed)
        self.cursor: dict[str, int] = {}  # conversation -> last position held
        self.placed: dict[str, int] = {}  # messageId -> its position (on the message, or `positions`)
        self.cursors_sent: list[dict[str, int]] = []
        self.last_id = 0
        self.hops = 0
        self.failed_syncs = 0

    def take(self, message: dict) -> None:
        mid = message["messageId"]
        self.copies[mid] += 1
        self.held.setdefault(mid, message)
        self.last_id = max(self.last_id, int(mid))
        if "seq" in message:
            self.placed[mid] = message["seq"]

    def drain(self, chat: ChatClient) -> None:
        for message in chat.drain("messages"):
            self.take(message)

    def sync(self, chat: ChatClient) -> bool:
        """Syncs until `more` is false; False when the broker answered with an error."""
        while True:
            if self.exact:
                self.drain(chat)
                # Held but past the cursor: got live (the cursor moves by sync answers only here).
                past = [
                    mid
                    for mid, m in self.held.items()
                    if self.placed.get(mid, 1 << 62) > self.cursor.get(m["conversationId"], 0)
                ]
                body = {"cursor": dict(self.cursor), "seen": past}
                self.cursors_sent.append(dict(self.cursor))
            else:
                body = {"afterMessageId": str(self.last_id)}
            chat.request("chat.sync", body, receipt=False)
            deadline = time.monotonic() + SYNC_WAIT_S
            while True:
                try:
                    done = json.loads(chat.listener.inboxes["sync"].get(timeout=0.05).body)
                    break
                except queue.Empty:
                    pass
                errors = chat.drain("errors")
                if errors:
                    self.failed_syncs += 1
                    return False
                if time.monotonic() > deadline:
                    self.failed_syncs += 1
                    return False
            self.drain(chat)  # the replay came before its end marker
            if self.exact:
                for conversation, position in done["cursor"].items():
                    # Never backwards: the answer moves the cursor, the client only keeps it.
                    self.cursor[conversation] = max(self.cursor.get(conversation, 0), position)
                self.placed.update(done.get("positions", {}))
            if not done["more"]:
                return True

    def run(self, nodes, stop: threading.Event) -> None:
        while not stop.is_set():
            chat = session(random.choice(nodes), self.login)
            self.hops += 1
            try:
                if self.sync(chat):
                    stay = time.monotonic() + random.uniform(*STAY_S)
                    while time.monotonic() < stay and not stop.is_set():
                        time.sleep(0.02)
                        self.drain(chat)
                self.drain(chat)
            finally:
                chat.client.drop() if random.random() < 0.5 else chat.close()

    def finish(self, nodes) -> None:
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            chat = session(random.choice(nodes), self.login)
            try:
                if self.sync(chat):
                    return
            finally:
                chat.close()
            time.sleep(0.2)
        raise AssertionError(f"{self.login}: no complete sync within {SETTLE_S}s after the senders stopped")


def speaks_cursor(node) -> bool:
    """Whether the broker knows `chat.sync {cursor}` (main's refuses the field)."""
    chat = session(node, f"probe-{uuid.uuid4().hex[:6]}")
    try:
        chat.request("chat.sync", {"cursor": {}}, receipt=False)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if chat.drain("errors"):
                return False
            try:
                chat.listener.inboxes["sync"].get(timeout=0.05)
                return True
            except queue.Empty:
                pass
        raise AssertionError("chat.sync: neither an answer nor an error")
    finally:
        chat.close()


@pytest.mark.timeout(120)
def test_readers_hopping_skewed_nodes_get_every_message_once_in_order_without_rewinding(cluster):
    nodes, storage = cluster
    tag = uuid.uuid4().hex[:6]
    readers_logins = [f"reader{i}-{tag}" for i in range(4)]
    senders_logins = [f"sender{i}-{tag}" for i in range(3)]
    exact = speaks_cursor(nodes[0])

    # Conversations: everyone; two halves; a direct pair.
    admin = session(nodes[0], senders_logins[0])
    rooms = {
        "all": admin.create("GROUP", readers_logins + senders_logins[1:], name="all")["conversationId"],
        "left": admin.create("GROUP", readers_logins[:2] + senders_logins[1:2], name="left")["conversationId"],
        "right": admin.create("GROUP", readers_logins[2:] + senders_logins[2:], name="right")["conversationId"],
    }
    direct = session(nodes[1], senders_logins[2])
    rooms["direct"] = direct.create("DIRECT", [readers_logins[0]])["conversationId"]
    direct.close()
    admin.close()
    members = {
        rooms["all"]: set(readers_logins),
        rooms["left"]: set(readers_logins[:2]),
        rooms["right"]: set(readers_logins[2:]),
        rooms["direct"]: {readers_logins[0]},
    }
    may_send = {
        senders_logins[0]: [rooms["all"], rooms["left"]],
        senders_logins[1]: [rooms["all"], rooms["left"]],
        senders_logins[2]: [rooms["all"], rooms["right"], rooms["direct"]],
    }

    readers = [Reader(login, exact) for login in readers_logins]
    stop = threading.Event()
    sent: dict[str, list[str]] = defaultdict(list)  # conversation -> ids with a RECEIPT
    sent_lock = threading.Lock()
    problems: list[str] = []

    def send(login: str) -> None:
        # One session per node: every message goes through a random one, so ids come from all
        # three clocks, interleaved.
        sessions = [session(node, login) for node in nodes]
        try:
            n = 0
            while not stop.is_set():
                chat = random.choice(sessions)
                conversation = random.choice(may_send[login])
                n += 1
                frame = chat.call(
                    "chat.send",
                    {"conversationId": conversation, "content": f"{login} {n}", "clientMessageId": f"{login}-{n}"},
                    timeout=10,
                )
                with sent_lock:
                    sent[conversation].append(frame.headers["message-id"])
                time.sleep(random.uniform(0.01, 0.04))
        except AssertionError as e:
            problems.append(f"{login}: {e}")
        finally:
            for chat in sessions:
                chat.close()

    def read(reader: Reader) -> None:
        try:
            reader.run(nodes, stop)
        except AssertionError as e:
            problems.append(f"{reader.login}: {e}")

    threads = [threading.Thread(target=send, args=(login,)) for login in senders_logins]
    threads += [threading.Thread(target=read, args=(reader,)) for reader in readers]
    for t in threads:
        t.start()
    if storage.sink is not None:
        time.sleep(PAUSE_AT_S)
        storage.sink.pause()
        try:
            time.sleep(PAUSE_S)
        finally:
            storage.sink.resume()
        time.sleep(SEND_S - PAUSE_AT_S - PAUSE_S)
    else:
        time.sleep(SEND_S_WITHOUT_SINK)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not problems, problems

    for reader in readers:
        reader.finish(nodes)
    total = sum(len(ids) for ids in sent.values())
    assert total > 30, f"only {total} messages sent"
    report = []
    for reader in readers:
        mine = [c for c, who in members.items() if reader.login in who]
        for conversation in mine:
            want = set(sent[conversation])
            have = {mid for mid, m in reader.held.items() if m["conversationId"] == conversation}
            missing, extra = want - have, have - want
            if missing:
                report.append(f"{reader.login} misses {len(missing)} of {len(want)} in {conversation}")
            if extra:
                report.append(f"{reader.login} has {len(extra)} never sent in {conversation}")
        if exact:
            # In order: every message placed, a conversation's positions 1..n, no position twice.
            for conversation in mine:
                positions = sorted(
                    reader.placed[mid] for mid, m in reader.held.items() if m["conversationId"] == conversation
                )
                if positions != list(range(1, len(positions) + 1)):
                    report.append(f"{reader.login}: positions of {conversation} are not 1..n: {positions[:10]}...")
            # The client never went back (and so never asked for what it had placed).
            for earlier, later in zip(reader.cursors_sent, reader.cursors_sent[1:]):
                if any(later.get(c, 0) < p for c, p in earlier.items()):
                    report.append(f"{reader.login}: the cursor went back: {earlier} then {later}")
    hops = sum(r.hops for r in readers)
    duplicates = sum(n - 1 for r in readers for n in r.copies.values())
    print(
        f"exact={exact} sent={total} hops={hops} failed_syncs={sum(r.failed_syncs for r in readers)} "
        f"copies_dropped_by_id={duplicates}"
    )
    assert hops >= 2 * len(readers), "the readers did not hop"
    assert not report, "\n".join(report)
