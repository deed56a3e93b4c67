"""The node-wide bound over all topic histories of a node (`--topic-history-max-bytes`, issue 18):
each rule bounds one topic, but many topics together must not outgrow the node. Past the bound
the oldest message of ANY topic goes first, counted in `stompbox_topic_history_evicted_total`,
and a resume from before it is `recovered:false`. Single node (a cluster's histories are in
Redis). Against a broker without the setting the broker does not start: the test fails."""

from __future__ import annotations

import re
import urllib.request

import stomp

import deployment
from conftest import WAIT_S

pytestmark = deployment.single_node_only("the bound is a node's memory; a cluster's histories are in Redis")

# Each message weighs about 300 bytes in a history (256 of bookkeeping, body, offset/epoch).
BOUND = 30_000
BODY = "x" * 20


def evicted(broker) -> int:
    with urllib.request.urlopen(f"http://{broker.host}:{broker.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(float(re.search(r"^stompbox_topic_history_evicted_total (\S+)$", text, re.M)[1]))


class Receipts(stomp.ConnectionListener):
    """RECEIPT frames by id: a resume's says `recovered`."""

    def __init__(self):
        self.frames = {}

    def on_receipt(self, frame):
        self.frames[frame.headers["receipt-id"]] = frame


def resumed(connect, broker, destination: str, epoch: str, offset: int) -> tuple[str, list[int]]:
    """A fresh session resuming `destination` after `offset`: `recovered`, offsets replayed."""
    reader = connect("reader", target=broker)
    receipts = Receipts()
    reader.conn.set_listener("receipts", receipts)
    headers = {"resume-epoch": epoch, "resume-offset": str(offset)}
    reader.conn.subscribe(destination, "0", receipt="resumed", headers=headers)
    reader.listener.wait_receipt("resumed")
    offsets = []
    while not reader.listener.messages.empty():
        offsets.append(int(reader.listener.messages.get().headers["offset"]))
    return receipts.frames["resumed"].headers["recovered"], offsets


def test_past_the_node_wide_bound_the_oldest_message_of_any_topic_goes(broker_factory, connect, unique):
    broker = broker_factory("--topic-history", "/topic/cap.*=1000/1000000/1h",
                            "--topic-history-max-bytes", str(BOUND))
    old, new = f"/topic/cap.old-{unique}", f"/topic/cap.new-{unique}"
    watcher = connect("watcher", target=broker)
    watcher.subscribe(old, "old")
    pub = connect("writer", target=broker)
    for _ in range(10):
        pub.conn.send(old, BODY)
    pub.send(old, BODY)  # with a receipt: all 11 are in the history now
    first = watcher.listener.message(WAIT_S)
    epoch = first.headers["epoch"]
    assert evicted(broker) == 0, "11 messages are far under the bound"

    # Another topic, each of its own messages far under its rule, fills the node's bound.
    for _ in range(200):
        pub.conn.send(new, BODY)
    pub.send(new, BODY)
    count = evicted(broker)
    # 212 messages of ~300 bytes against 30,000: about 110 go, the old topic's 11 first.
    assert 50 < count < 212, count

    # The old topic's messages went first: a resume from its start is not recovered; from its
    # last message it is (nothing after it was lost).
    assert resumed(connect, broker, old, epoch, 0) == ("false", [])
    assert resumed(connect, broker, old, epoch, 11) == ("true", [])
    assert evicted(broker) == count, "a resume evicts nothing"
