"""Chat SENDs inside a STOMP transaction (issue 12, finding 4): the COMMIT's RECEIPT means every
`/app/chat.send` of the transaction is stored, as a chat.send's own RECEIPT does — on the
embedded store (fsync'd), on PostgreSQL (committed), and on Kafka + PostgreSQL (acknowledged by
Kafka, each send's ack on its own). Each test makes the store it needs, so this file runs once,
not again per STOMPBOX_TEST_STORAGE (it is not a `test_chat_*` file).

The store is held back deterministically: the embedded SQLite store by a test connection
holding its write lock, PostgreSQL by a test session holding a lock on the messages table
(inserts wait on it), Kafka by pausing a private tansu. A RECEIPT that went out at COMMIT,
before the store had the messages, shows up while the store is held.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time

import pytest

from test_streamed import services_or_skip, storage, stored, tansu, wait_rows  # noqa: F401 (fixtures)

import streamed

HELD_S = 1.0


class TableLock:
    """A psql session holding EXCLUSIVE on a table (reads pass, writes wait) until released."""

    def __init__(self, url: str, table: str):
        self.process = subprocess.Popen(
            [str(streamed.PG_BIN / "psql") if (streamed.PG_BIN / "psql").exists() else "psql", url,
             "-v", "ON_ERROR_STOP=1", "-At"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=streamed.clean_env(),
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN EXCLUSIVE MODE;\n\\echo locked\n")
        self.process.stdin.flush()
        seen = []
        while (line := self.process.stdout.readline()) and line.strip() != "locked":
            seen.append(line.strip())  # command tags (BEGIN, LOCK TABLE)
        assert line.strip() == "locked", f"lock not taken after {seen}: {self.process.stderr.read()}"

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("COMMIT;\n\\q\n")
            self.process.stdin.close()
            self.process.wait(timeout=10)


def commit_chat_sends(alice, conversation: str, contents: list[str], tx: str) -> str:
    """BEGIN, a chat.send per content inside `tx`, COMMIT with a receipt; returns its id."""
    alice.conn.begin(tx)
    for content in contents:
        alice.conn.send(
            "/app/chat.send",
            f'{{"conversationId":"{conversation}","content":"{content}"}}',
            headers={"content-type": "application/json"},
            transaction=tx,
        )
    receipt = f"commit-{tx}"
    alice.conn.commit(tx, receipt=receipt)
    return receipt


def test_commit_receipt_waits_until_sqlite_stored_the_chat_sends(broker_factory, chat, tmp_path, unique):
    if streamed.mode():
        pytest.skip("the embedded store only")
    data_dir = tmp_path / "store"
    target = broker_factory(data_dir=data_dir)
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    alice.send_message("before", conversation=conversation)

    # The store's writes wait on this lock (its busy timeout is 5 s); reads go on (WAL).
    held = sqlite3.connect(data_dir / "chat.sqlite3", isolation_level=None)
    try:
        held.execute("BEGIN IMMEDIATE")
        receipt = commit_chat_sends(alice, conversation, ["tx one", "tx two"], f"tx-{unique}")
        time.sleep(HELD_S)
        assert not alice.got_receipt(receipt), "COMMIT RECEIPT before SQLite stored its chat sends"
    finally:
        held.execute("ROLLBACK")
        held.close()
    alice.listener.wait_receipt(receipt)
    with sqlite3.connect(data_dir / "chat.sqlite3") as reader:
        rows = reader.execute(
            "SELECT content FROM messages WHERE conversation_id = ? ORDER BY message_id", (conversation,)
        ).fetchall()
    assert [r[0] for r in rows] == ["before", "tx one", "tx two"], rows


def test_commit_receipt_waits_until_postgresql_committed_the_chat_sends(
    broker_factory, chat, storage, unique  # noqa: F811
):
    store = storage(with_kafka=False)
    target = broker_factory(*store.broker_args())
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    alice.send_message("before", conversation=conversation)

    lock = TableLock(store.postgres_url, "messages")
    try:
        receipt = commit_chat_sends(alice, conversation, ["tx one", "tx two"], f"tx-{unique}")
        time.sleep(HELD_S)
        assert not alice.got_receipt(receipt), "COMMIT RECEIPT before PostgreSQL stored its chat sends"
    finally:
        lock.release()
    alice.listener.wait_receipt(receipt)
    # Read at once, straight from PostgreSQL: a RECEIPT means committed.
    contents = [row[1] for row in stored(store, conversation)]
    assert contents == ["before", "tx one", "tx two"], contents


def test_commit_receipt_follows_the_errors_of_refused_chat_sends(broker_factory, chat, storage, unique):  # noqa: F811
    store = storage(with_kafka=False)
    target = broker_factory(*store.broker_args())
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    receipt = commit_chat_sends(alice, f"{conversation}-nope", ["lost"], f"tx-{unique}")
    alice.listener.wait_receipt(receipt)
    error = alice.event("errors", 0.1)  # already here: it went out before the RECEIPT
    assert error["code"] == "UNKNOWN_CONVERSATION", error


def test_commit_receipt_waits_for_kafka_to_acknowledge_every_chat_send(
    broker_factory, chat, storage, tansu, unique  # noqa: F811
):
    tansu.start()
    store = storage(kafka=tansu.brokers)
    target = broker_factory(*store.broker_args())
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    alice.send_message("before", conversation=conversation)
    bob.event("messages")

    tansu.pause()
    try:
        receipt = commit_chat_sends(alice, conversation, ["tx one", "tx two"], f"tx-{unique}")
        assert [m["content"] for m in bob.events("messages", 2)] == ["tx one", "tx two"], "delivery waits for nobody"
        time.sleep(HELD_S)
        assert not alice.got_receipt(receipt), "COMMIT RECEIPT before Kafka acknowledged its chat sends"
    finally:
        tansu.resume()
    alice.listener.wait_receipt(receipt, 30.0)
    rows = wait_rows(store, conversation, 3)
    assert [row[1] for row in rows] == ["before", "tx one", "tx two"], rows
