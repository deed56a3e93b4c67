"""A conversation's positions follow its message ids when a client pipelines sends into several
conversations at once: the broker takes each message's id in arrival order and must place the
conversation's messages in the same order, in every store. Two ways that broke on the embedded
store (docs/protocol.md, "Order"): sends that had to ask the store for their conversation
(not cached, e.g. right after a restart) reached it in the order those lookups finished; and
a send whose first try at the store's queue came after the sequencer had used up its task's
cooperative budget was tried again behind later ones."""

import pytest

from test_chat_sync_cursor import cursor_sync

GROUPS = 8
ROUNDS = 12
# 104 requests in a burst: more than a user's default burst allows.
NO_RATE_LIMIT = ("--chat-rate", "0")


@pytest.mark.parametrize("cold", [True, False], ids=["after-restart", "warm"])
def test_pipelined_sends_are_placed_in_id_order_in_each_conversation(broker_factory, chat, unique, cold):
    first = broker_factory(*NO_RATE_LIMIT)
    alice = chat(f"alice-{unique}", target=first)
    bob = chat(f"bob-{unique}", target=first, queues=())
    groups = [alice.create("GROUP", [bob.login], name=f"g{i}")["conversationId"] for i in range(GROUPS)]
    target = first
    if cold:
        first.stop()
        target = broker_factory(*NO_RATE_LIMIT, data_dir=first.data_dir)
    alice = chat(alice.login, target=target, queues=("sync", "messages"))
    receipts = [
        alice.request("chat.send", {"conversationId": g, "content": f"{i}"})
        for i in range(ROUNDS)
        for g in groups
    ]
    for r in receipts:
        alice.listener.wait_receipt(r, 30)
    alice.drain("messages")
    replay, _ = cursor_sync(alice, {"cursor": {}})
    assert len(replay) == len(receipts)
    for g in groups:
        placed = sorted((m for m in replay if m["conversationId"] == g), key=lambda m: m["seq"])
        assert [m["content"] for m in placed] == [f"{i}" for i in range(ROUNDS)], f"{g}: placed out of order"
        ids = [int(m["messageId"]) for m in placed]
        assert ids == sorted(ids), f"{g}: positions out of id order"
