"""Chat sync, history and durability over stomp.py: a reconnecting client syncs what it missed
(no loss, no reorder, ids strictly increasing), history pages backwards without overlap, and every
message that got a RECEIPT survives `kill -9` of the broker."""

import threading

import deployment
from conftest import WAIT_S


def send_many(session, conversation, contents, **extra):
    """Pipelines `chat.send`s (each with a receipt), then waits for every RECEIPT; returns the
    ids in send order."""
    receipts = [session.request("chat.send", {"conversationId": conversation, "content": c, **extra}) for c in contents]
    ids = []
    for r in receipts:
        session.listener.wait_receipt(r, WAIT_S * 2)
        ids.append(session.listener.receipt_frames[r].headers["message-id"])
    return ids


def sync(session, after, limit=None):
    """One `chat.sync` round: the replayed messages, then the closing `/user/queue/sync`."""
    body = {"afterMessageId": after} if limit is None else {"afterMessageId": after, "limit": limit}
    session.call("chat.sync", body)
    done = session.event("sync")
    return session.drain("messages"), done


def test_sync_after_reconnect_returns_what_was_sent_meanwhile(chat, unique):
    alice, bob, carol = chat(f"alice-{unique}"), chat(f"bob-{unique}"), chat(f"carol-{unique}")
    direct = alice.create("DIRECT", [bob.login])["conversationId"]
    group = carol.create("GROUP", [alice.login, bob.login], name="three")["conversationId"]
    last_seen = alice.send_message("before", conversation=direct)
    assert bob.event("messages")["messageId"] == last_seen
    bob.close()

    sent = []  # interleaved across both of bob's conversations, in send (= id) order
    for i in range(6):
        sent.append(alice.send_message(f"direct {i}", conversation=direct))
        sent.append(carol.send_message(f"group {i}", conversation=group))

    bob = chat(bob.login)
    bob_phone = chat(bob.login)
    replay, done = sync(bob, last_seen)
    ids = [m["messageId"] for m in replay]
    assert ids == sent, "no loss, no reorder"
    assert all(int(a) < int(b) for a, b in zip(ids, ids[1:])), "ids strictly increasing"
    assert [m["content"] for m in replay] == [f"{k} {i}" for i in range(6) for k in ("direct", "group")]
    assert done == {"upToMessageId": sent[-1], "more": False}
    bob_phone.none("messages", 0.3)  # the replay is for the asking session only
    bob_phone.none("sync", 0.05)


def test_sync_pages_with_limit_until_more_is_false(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}", queues=("sync", "messages"))
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    sent = send_many(alice, conversation, [f"m{i}" for i in range(12)])
    bob.events("messages", 12)  # the live copies

    got, after = [], "0"
    rounds = []
    while True:
        replay, done = sync(bob, after, limit=5)
        rounds.append((len(replay), done["more"]))
        got += [m["messageId"] for m in replay]
        after = done["upToMessageId"]
        if not done["more"]:
            break
        assert len(rounds) < 10
    assert got == sent
    assert rounds[:2] == [(5, True), (5, True)] and rounds[2][0] == 2
    replay, done = sync(bob, after)  # caught up: nothing, and the watermark stays
    assert replay == [] and done == {"upToMessageId": sent[-1], "more": False}


def test_sync_while_messages_keep_arriving_loses_nothing(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}", queues=("sync", "messages"))
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    before = send_many(alice, conversation, [f"old {i}" for i in range(10)])
    bob.events("messages", 10)  # the live copies

    during: list[str] = []
    sender = threading.Thread(target=lambda: during.extend(send_many(alice, conversation, [f"new {i}" for i in range(10)])))
    sender.start()
    bob.call("chat.sync", {"afterMessageId": "0"})
    done = bob.event("sync")
    sender.join(WAIT_S * 3)
    assert not sender.is_alive()
    expected = before + during

    seen: dict[str, dict] = {}
    stream = bob.drain("messages")
    while len({m["messageId"] for m in stream}) < len(expected):
        stream.append(bob.event("messages"))
    for m in stream:  # a duplicate between replay and live is dropped by id
        seen.setdefault(m["messageId"], m)
    assert sorted(seen, key=int) == expected, "no loss"
    assert int(done["upToMessageId"]) >= int(before[-1])


def test_history_pages_backwards_without_overlap(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    alice_phone = chat(alice.login)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    sent = send_many(alice, conversation, [f"h{i:02d}" for i in range(25)])

    pages, before = [], None
    for _ in range(3):
        body = {"conversationId": conversation, "limit": 10}
        if before:
            body["beforeMessageId"] = before
        bob.call("chat.history", body)
        page = bob.event("history")
        assert page["conversationId"] == conversation
        ids = [m["messageId"] for m in page["messages"]]
        assert ids == sorted(ids, key=int), "ascending within a page"
        pages.append((ids, page["hasMore"]))
        before = ids[0]
    assert [(len(ids), more) for ids, more in pages] == [(10, True), (10, True), (5, False)]
    assert pages[2][0] + pages[1][0] + pages[0][0] == sent, "newest first, no overlap, no gap"
    bob.call("chat.history", {"conversationId": conversation, "limit": 1})
    (newest,) = bob.event("history")["messages"]
    assert newest["messageId"] == sent[-1] and newest["content"] == "h24" and newest["senderId"] == alice.login

    alice.call("chat.history", {"conversationId": conversation, "limit": 1000})  # clamped to 100
    page = alice.event("history")
    assert [m["messageId"] for m in page["messages"]] == sent and page["hasMore"] is False
    alice_phone.none("history", 0.3)  # the answer is for the asking session only


def test_receipted_messages_survive_kill_9(broker_factory, chat, unique):
    first = broker_factory()
    alice = chat(f"alice-{unique}", target=first)
    bob = chat(f"bob-{unique}", target=first, queues=())
    direct = alice.create("DIRECT", [bob.login])["conversationId"]
    group = alice.create("GROUP", [bob.login], name="durable")["conversationId"]
    sent = send_many(alice, direct, [f"d{i}" for i in range(20)])
    sent += send_many(alice, group, [f"g{i}" for i in range(10)])
    retried = alice.send_message("retry me", conversation=direct, clientMessageId=f"cm-{unique}")
    sent.append(retried)

    first.kill()  # right after the last RECEIPT: no graceful shutdown, no final flush
    second = broker_factory(data_dir=first.data_dir)
    bob = chat(bob.login, target=second)
    replay, done = sync(bob, "0")
    assert [m["messageId"] for m in replay] == sent
    assert [m["content"] for m in replay] == [f"d{i}" for i in range(20)] + [f"g{i}" for i in range(10)] + ["retry me"]
    assert done == {"upToMessageId": sent[-1], "more": False}

    bob.call("conversation.list", {})
    listed = sorted(c["conversationId"] for c in bob.event("conversations")["conversations"])
    assert listed == sorted([direct, group])

    alice = chat(alice.login, target=second)
    assert alice.send_message("retry me", conversation=direct, clientMessageId=f"cm-{unique}") == retried
    if deployment.clustered():
        # A restarted node cannot know the original was delivered (another node might have
        # died before delivering it): once more, under its id (docs/protocol.md, Cluster mode).
        assert bob.frame("messages").headers["message-id"] == retried
    bob.none("messages", 0.3)  # idempotency survived the crash too
    later = alice.send_message("after restart", conversation=direct)
    assert int(later) > int(sent[-1]), "ids keep increasing after a restart"
