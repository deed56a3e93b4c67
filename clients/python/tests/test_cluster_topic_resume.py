"""Resumable /topic subscriptions in a cluster (issue 18): the topic history is shared through
Redis, so every node shows the same `offset` and `epoch` for a message, and a subscriber that
lost its connection to one node resumes on ANOTHER node with every message exactly once, or
is told `recovered: false` when the history cannot give them all (away longer than the history
holds, Redis restarted without its data, the history lost).

Three nodes on a private Redis (embedded stores: topics need none). Against a broker whose
cluster keeps no history (main before this change), the first test fails: MESSAGEs carry no
offset and a resume is never recovered.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import stomp

import deployment
from conftest import WAIT_S, Collector, start_node

HISTORY = (
    "--topic-history", "/topic/stream.*=100000/100000000/1h",
    "--topic-history", "/topic/short.*=5/1000000/1h",
)
# Each of two publishers (on nodes B and C) sends this many, a pause every BURST.
PER_PUBLISHER = 1500
BURST = 50
# How long the subscriber stays away mid-stream.
AWAY_S = 1.0


class RestartableRedis(deployment.Redis):
    """The private Redis, restartable on the same socket (no persistence: its data is gone)."""

    def restart(self) -> None:
        args = self.process.args
        self.stop_process()
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            assert time.monotonic() < deadline, "redis did not come back"
            time.sleep(0.02)

    def stop_process(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("SKIPPED: redis-server missing (scripts/services.sh up redis)")
    redis = RestartableRedis()
    nodes = []
    try:
        for i in range(3):
            nodes.append(start_node(tmp_path, "--redis-url", redis.url, *HISTORY, data_dir=tmp_path / f"node{i}"))
        yield nodes, redis
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


class Listener(Collector):
    """Keeps RECEIPT frames too: a resume's says `recovered`."""

    def __init__(self):
        super().__init__()
        self.receipt_frames: dict[str, stomp.utils.Frame] = {}

    def on_receipt(self, frame):
        self.receipt_frames[frame.headers["receipt-id"]] = frame
        super().on_receipt(frame)


def connect(node, login: str):
    conn = stomp.Connection12([node.address], heartbeats=(0, 0), reconnect_attempts_max=1)
    listener = Listener()
    conn.set_listener("l", listener)
    conn.connect(login, "unused", wait=False)
    assert listener.connected.wait(WAIT_S), f"{login}: no CONNECTED from {node.address}"
    return conn, listener


# A position in no history: a SUBSCRIBE resuming from it is live from now on, and its
# RECEIPT comes only once this node hears the topic from Redis (a plain SUBSCRIBE's RECEIPT
# does not wait for that), so a publish after it reaches the subscriber.
NOWHERE = ("none", 0)


def subscribe(conn, listener, destination: str, resume: tuple[str, int] = NOWHERE) -> str | None:
    """SUBSCRIBE resuming after `resume` = (epoch, offset); the RECEIPT's `recovered`."""
    receipt = f"r-{uuid.uuid4().hex[:8]}"
    headers = {"resume-epoch": resume[0], "resume-offset": str(resume[1])}
    conn.subscribe(destination, "0", ack="auto", receipt=receipt, headers=headers)
    listener.wait_receipt(receipt, timeout=10)
    return listener.receipt_frames[receipt].headers.get("recovered")


def drain(listener, got: list, until=lambda got: False, timeout: float = WAIT_S) -> None:
    """Moves arrived MESSAGEs into `got` as (epoch, offset, body) until `until(got)` or no
    message came for `timeout`."""
    while not until(got):
        try:
            frame = listener.messages.get(timeout=timeout)
        except queue.Empty:
            return
        got.append((frame.headers.get("epoch"), int(frame.headers.get("offset", "0")), frame.body))


def first_message(nodes, dest: str, body: str):
    """A subscriber on node A, a publisher on node B, and `body` published: the subscriber's
    connection, the publisher's, and what the subscriber got: [(epoch, 1, body)]."""
    sub = connect(nodes[0], "reader")
    assert subscribe(*sub, dest) == "false", "nothing to resume from"
    pub = connect(nodes[1], "writer")
    pub[0].send(dest, body, receipt="first")
    pub[1].wait_receipt("first")
    got: list = []
    drain(sub[1], got, lambda g: len(g) >= 1)
    assert got and got[0][1:] == (1, body), got
    return sub, pub, got


def test_a_subscriber_resumes_on_another_node_with_every_message_exactly_once(cluster):
    nodes, _ = cluster
    dest = f"/topic/stream.{uuid.uuid4().hex[:8]}"
    # Positions exist only once Redis gave them: the first message proves the route.
    (sub, sub_l), pub_b, got = first_message(nodes, dest, "b-0")
    pubs = [pub_b, connect(nodes[2], "writer2")]

    def publish(index: int, conn, listener) -> None:
        tag = "bc"[index]
        for n in range(1, PER_PUBLISHER + 1):
            conn.send(dest, f"{tag}-{n}")
            if n % BURST == 0:
                time.sleep(0.005)
        conn.send(dest, f"{tag}-end", receipt=f"end-{tag}")
        listener.wait_receipt(f"end-{tag}", timeout=60)

    threads = [threading.Thread(target=publish, args=(i, *pubs[i])) for i in (0, 1)]
    for t in threads:
        t.start()
    drain(sub_l, got, lambda g: len(g) >= 300)
    sub.transport.disconnect_socket()
    assert sub_l.disconnected.wait(WAIT_S)
    time.sleep(0.1)
    drain(sub_l, got, timeout=0.05)  # what was already in flight before the socket closed
    epoch, last, _ = got[-1]
    time.sleep(AWAY_S)
    # Back on ANOTHER node (C), from the last position seen.
    sub2, sub2_l = connect(nodes[2], "reader")
    recovered = subscribe(sub2, sub2_l, dest, resume=(epoch, last))
    for t in threads:
        t.join(timeout=120)
    total = 1 + 2 * (PER_PUBLISHER + 1)
    drain(sub2_l, got, lambda g: len(g) >= total, timeout=10)
    sub2.disconnect()
    for conn, _ in pubs:
        conn.disconnect()

    assert recovered == "true"
    bodies = [body for _, _, body in got]
    missing = {f"{t}-{n}" for t in "bc" for n in (*range(1, PER_PUBLISHER + 1), "end")} - set(bodies)
    assert not missing, f"{len(missing)} missing, e.g. {sorted(missing)[:5]}"
    assert len(bodies) == len(set(bodies)) == total, f"{len(bodies) - len(set(bodies))} duplicates"
    assert [o for _, o, _ in got] == list(range(1, total + 1)), "offsets 1..n, in order, on both nodes"
    assert {e for e, _, _ in got} == {epoch}
    for tag in "bc":
        mine = [int(b.split("-")[1]) for b in bodies if b.startswith(f"{tag}-") and not b.endswith("end")]
        assert mine == sorted(mine), f"publisher {tag}'s order kept"
    assert 300 <= last < total, f"dropped mid-stream (after {last} of {total})"


def test_away_longer_than_the_history_is_not_recovered(cluster):
    nodes, _ = cluster
    dest = f"/topic/short.{uuid.uuid4().hex[:8]}"
    (sub, _), (pub, pub_l), got = first_message(nodes, dest, "seen")
    sub.disconnect()
    for i in range(10):
        pub.send(dest, f"missed {i}", receipt=f"m{i}")
        pub_l.wait_receipt(f"m{i}")
    sub2, sub2_l = connect(nodes[2], "reader")
    assert subscribe(sub2, sub2_l, dest, resume=(got[0][0], 1)) == "false"
    sub2_l.no_message(0.5)  # no partial replay
    pub.send(dest, "live", receipt="live")
    drain(sub2_l, got, lambda g: len(g) >= 2)
    assert [(o, b) for _, o, b in got[1:]] == [(12, "live")]
    # Resuming from the newest position the history holds is complete.
    sub3, sub3_l = connect(nodes[1], "reader")
    assert subscribe(sub3, sub3_l, dest, resume=(got[0][0], 10)) == "true"
    replayed: list = []
    drain(sub3_l, replayed, lambda g: len(g) >= 2)
    assert [(o, b) for _, o, b in replayed] == [(11, "missed 9"), (12, "live")]
    for conn in (sub2, sub3, pub):
        conn.disconnect()


@pytest.mark.parametrize("loss", ["redis restart", "history deleted"])
def test_a_lost_history_changes_the_epoch_and_a_resume_reports_it(cluster, loss):
    nodes, redis = cluster
    name = f"stream.{uuid.uuid4().hex[:8]}"
    dest = f"/topic/{name}"
    (sub, sub_l), (pub, _), got = first_message(nodes, dest, "before")
    old_epoch = got[0][0]
    assert old_epoch

    if loss == "redis restart":
        redis.restart()
    else:
        assert redis.cli("DEL", f"sbx:hm:{{{name}}}", f"sbx:hs:{{{name}}}") == "2"
    # Publish until the subscriber, still connected to node A, hears the new history (nodes
    # reconnect to a restarted Redis within seconds).
    deadline = time.monotonic() + 20
    after: list = []
    while not after and time.monotonic() < deadline:
        pub.send(dest, "after")
        drain(sub_l, after, lambda g: len(g) >= 1, timeout=0.5)
    assert after, "no message after the history was lost"
    new_epoch, _, body = after[0]
    assert body == "after" and new_epoch != old_epoch, (old_epoch, after[0])

    sub2, sub2_l = connect(nodes[2], "reader")
    assert subscribe(sub2, sub2_l, dest, resume=(old_epoch, 1)) == "false"
    sub3, sub3_l = connect(nodes[2], "reader")
    assert subscribe(sub3, sub3_l, dest, resume=(new_epoch, 0)) == "true"
    replayed: list = []
    drain(sub3_l, replayed, lambda g: len(g) >= 1)
    assert replayed[0][:2] == (new_epoch, 1), "the new history starts again at 1"
    for conn in (sub, sub2, sub3, pub):
        conn.disconnect()


def commandstats(redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (`INFO commandstats`)."""
    calls = {}
    for line in (redis.cli("INFO", "commandstats") or "").splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            calls[name] = int(dict(f.split("=") for f in fields.split(","))["calls"])
    return calls


def test_a_publish_names_the_script_by_its_hash_and_survives_an_empty_script_cache(cluster):
    """Each positioned publish runs the append script (~1.5 KB of Lua). It goes to Redis as
    EVALSHA (its 40-byte hash); where Redis lacks the script (restarted, SCRIPT FLUSH, a
    replica promoted) the EVALSHA answers NOSCRIPT without running, and the node sends that
    call again as EVAL: no publish is lost or reordered. On main (EVAL with the text every
    time) the first assertion fails: 20 EVALs, no EVALSHA."""
    nodes, redis = cluster
    dest = f"/topic/stream.{uuid.uuid4().hex[:8]}"
    (sub, sub_l), (pub, pub_l), got = first_message(nodes, dest, "first")  # the script is cached now
    redis.cli("CONFIG", "RESETSTAT")
    for i in range(20):
        pub.send(dest, f"cached {i}", receipt=f"c{i}")
        pub_l.wait_receipt(f"c{i}")
    drain(sub_l, got, lambda g: len(g) >= 21)
    calls = commandstats(redis)
    assert calls.get("evalsha", 0) >= 20 and calls.get("eval", 0) == 0, calls

    redis.cli("SCRIPT", "FLUSH")
    for i in range(10):
        pub.send(dest, f"flushed {i}", receipt=f"f{i}")
        pub_l.wait_receipt(f"f{i}")
    drain(sub_l, got, lambda g: len(g) >= 31)
    assert [b for _, _, b in got] == ["first", *(f"cached {i}" for i in range(20)), *(f"flushed {i}" for i in range(10))]
    assert [o for _, o, _ in got] == list(range(1, 32)), "offsets 1..n, in order, across the empty cache"
    assert commandstats(redis).get("eval", 0) >= 1, "the NOSCRIPT fallback (EVAL) never ran"
    sub.disconnect()
    pub.disconnect()
