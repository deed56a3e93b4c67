"""The write path for scale (`--kafka-brokers` + `--postgres-url`) through outages: Kafka down
at start, Kafka unreachable mid-run, a refused message, and the sink lagging behind delivery.

Each test has its own database, topic and sink; the Kafka outages use a private tansu the
test pauses (SIGSTOP: connections open, nothing answers) or starts late. What every test
proves: live delivery goes on, nothing that got a RECEIPT is lost, nothing is stored twice,
and sync has no gap.
"""

from __future__ import annotations

import os
import re
import time

import pytest

import streamed
from test_chat_sync import sync

WAIT_S = 5.0


@pytest.fixture
def services_or_skip():
    found = streamed.services()
    if "STOMPBOX_POSTGRES_URL" in found and "STOMPBOX_KAFKA_BROKERS" in found:
        return found
    if os.environ.get("STOMPBOX_REQUIRE_SERVICES") == "1":
        pytest.fail("PostgreSQL/Kafka not running: scripts/services.sh up")
    pytest.skip("SKIPPED: PostgreSQL/Kafka not running (scripts/services.sh up)")


@pytest.fixture
def tansu(tmp_path, services_or_skip):
    """A private Kafka-API broker, not started: the test decides when."""
    t = streamed.Tansu(tmp_path)
    yield t
    t.stop()


@pytest.fixture
def storage(tmp_path, services_or_skip):
    made: list[streamed.Storage] = []

    def make(**kwargs) -> streamed.Storage:
        s = streamed.Storage.create(tmp_path, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        if s.sink is not None:
            s.sink.stop()


def stored(store: streamed.Storage, conversation: str) -> list[tuple[str, str, str]]:
    """(message_id, content, client_message_id) of every row, by id."""
    rows = store.rows(
        f"SELECT message_id, content, coalesce(client_message_id, '') FROM messages "
        f"WHERE conversation_id = '{conversation}' ORDER BY message_id"
    )
    return [tuple(r) for r in rows]


def wait_rows(store: streamed.Storage, conversation: str, count: int, within: float = 20.0):
    deadline = time.monotonic() + within
    while True:
        rows = stored(store, conversation)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_sync_waits_for_the_sink_instead_of_answering_with_a_gap(broker_factory, chat, storage, unique):
    store = storage()
    target = broker_factory(*store.broker_args())
    alice = chat(f"alice-{unique}", target=target)
    conversation = alice.create("DIRECT", [f"bob-{unique}"])["conversationId"]
    first = alice.send_message("before the lag", conversation=conversation)

    store.sink.pause()  # Kafka has every message from here on; PostgreSQL none of them
    sent = [first] + [alice.send_message(f"m{i}", conversation=conversation) for i in range(10)]
    assert len(stored(store, conversation)) <= 1

    bob = chat(f"bob-{unique}", target=target)
    receipt_id = bob.request("chat.sync", {"afterMessageId": "0"})
    time.sleep(1.0)
    assert not bob.got_receipt(receipt_id), "sync answered while the sink held back acknowledged messages"
    bob.none("sync", 0.05)

    store.sink.resume()
    bob.listener.wait_receipt(receipt_id, WAIT_S)
    done = bob.event("sync")
    replay = bob.drain("messages")
    assert [m["messageId"] for m in replay] == sent
    assert done == {"upToMessageId": sent[-1], "more": False}


def test_kafka_down_at_start_holds_receipts_and_delivery_goes_on(broker_factory, chat, storage, tansu, unique):
    store = storage(kafka=tansu.brokers, start_sink=False)
    target = broker_factory(*store.broker_args())  # starts although Kafka is not there
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]

    receipts = [
        alice.request("chat.send", {"conversationId": conversation, "content": f"held {i}", "clientMessageId": f"h{i}"})
        for i in range(3)
    ]
    live = bob.events("messages", 3)
    assert [m["content"] for m in live] == ["held 0", "held 1", "held 2"], "delivery waits for nobody"
    time.sleep(0.5)
    assert not any(alice.got_receipt(r) for r in receipts), "a RECEIPT before Kafka acknowledged"

    tansu.start()
    for r in receipts:
        alice.listener.wait_receipt(r, 30.0)
    acked = [alice.listener.receipt_frames[r].headers["message-id"] for r in receipts]
    assert acked == [m["messageId"] for m in live]

    store.sink.start()
    rows = wait_rows(store, conversation, 3)
    assert rows == [(i, f"held {n}", f"h{n}") for n, i in enumerate(acked)]
    replay, _ = sync(bob, "0")
    assert [m["messageId"] for m in replay] == acked


def test_kafka_unreachable_mid_run_holds_then_refuses_when_the_buffer_is_full(
    broker_factory, chat, storage, tansu, unique
):
    tansu.start()
    store = storage(kafka=tansu.brokers)
    target = broker_factory(*store.broker_args(), "--kafka-max-pending", "5")
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    before = alice.send_message("before", conversation=conversation)
    bob.event("messages")

    tansu.pause()
    held = [alice.request("chat.send", {"conversationId": conversation, "content": f"held {i}"}) for i in range(5)]
    assert [m["content"] for m in bob.events("messages", 5)] == [f"held {i}" for i in range(5)]
    refused = alice.request("chat.send", {"conversationId": conversation, "content": "one too many"})
    error = alice.event("errors")
    assert error["code"] == "UNAVAILABLE" and error["receiptId"] == refused, error
    bob.none("messages", 0.3)  # refused at accept: never delivered
    assert not any(alice.got_receipt(r) for r in held)

    tansu.resume()
    for r in held:
        alice.listener.wait_receipt(r, 30.0)
    acked = [before] + [alice.listener.receipt_frames[r].headers["message-id"] for r in held]
    rows = wait_rows(store, conversation, 6)
    assert [r[0] for r in rows] == acked, "every acknowledged message once, nothing else"
    assert not alice.got_receipt(refused)


def test_a_message_kafka_does_not_acknowledge_in_time_is_reported_not_stored(
    broker_factory, chat, storage, tansu, unique
):
    tansu.start()
    store = storage(kafka=tansu.brokers)
    target = broker_factory(*store.broker_args(), "--kafka-timeout", "2s")
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    alice.send_message("warm up", conversation=conversation)
    bob.event("messages")

    tansu.pause()
    receipt_id = alice.request(
        "chat.send", {"conversationId": conversation, "content": "in doubt", "clientMessageId": "doubt-1"}
    )
    seen = bob.event("messages")  # delivered live before Kafka answered
    error = alice.event("errors", 10.0)
    assert error["code"] == "NOT_STORED", error
    assert error["receiptId"] == receipt_id and error["clientMessageId"] == "doubt-1"
    assert seen["messageId"] in error["message"]
    assert not alice.got_receipt(receipt_id)

    tansu.resume()
    # The client retries with the same clientMessageId, as the contract says.
    retry = alice.request(
        "chat.send", {"conversationId": conversation, "content": "in doubt", "clientMessageId": "doubt-1"}
    )
    alice.listener.wait_receipt(retry, 40.0)
    retried = alice.listener.receipt_frames[retry].headers["message-id"]
    rows = wait_rows(store, conversation, 2)
    time.sleep(0.5)  # let a late copy of the first attempt land, if Kafka kept it
    rows = stored(store, conversation)
    in_doubt = [r for r in rows if r[2] == "doubt-1"]
    assert len(in_doubt) == 1, f"stored twice: {rows}"
    # The retry re-sent the message in doubt: one id everywhere (RECEIPT, live copy, row).
    assert retried == seen["messageId"] == in_doubt[0][0]


def test_a_broker_without_a_sink_warns_naming_the_consumer_group_and_the_lag(broker_factory, storage):
    store = storage(start_sink=False)
    target = broker_factory(*store.broker_args())
    # A round of the sync barrier (5 s) fails first: the warning comes within that of start.
    deadline = time.monotonic() + 20.0
    while not (warned := [line for line in target.log_path.read_text(errors="replace").splitlines()
                          if "persistence is behind" in line]):
        assert time.monotonic() < deadline, f"no warning about the missing sink:\n{target.log_tail()}"
        time.sleep(0.1)
    line = warned[0]
    assert "WARN" in line, line
    assert f"consumer group {store.topic}.sink" in line, line
    # The barrier's markers themselves wait in Kafka, one per partition: the lag is counted.
    lag = re.search(r"\blag=(\d+)", line)
    assert lag and int(lag[1]) >= streamed.PARTITIONS, line

    # While it lasts, and no longer: a sink started now is noticed within a check or two.
    store.sink.start()
    deadline = time.monotonic() + 20.0
    while "persistence caught up" not in target.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the sink's return went unnoticed:\n{target.log_tail()}"
        time.sleep(0.1)
