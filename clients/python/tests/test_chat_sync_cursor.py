"""Exact sync (`chat.sync {cursor, seen}`, docs/protocol.md "Sync after reconnect") in every
deployment mode: each conversation's messages carry their position (`seq`, 1, 2, …); a sync
from a cursor sends what is after it, once, and moves the cursor; what the client says it got
live (`seen`) is placed (`positions`) instead of sent again. (The cluster with skewed clocks and
a stopped sink: test_cluster_sync.py.)"""

import deployment
from test_chat_sync import send_many


def cursor_sync(session, body):
    """One `chat.sync` round with a cursor: the replay, then the closing `/user/queue/sync`."""
    session.call("chat.sync", body)
    done = session.event("sync")
    return session.drain("messages"), done


def wait_live(session, count):
    """The live copies; until the store gives positions as it stores (all but Kafka's), a live
    copy says where it is too."""
    live = session.events("messages", count)
    if deployment.storage() != "streamed":
        assert all("seq" in m for m in live), live
    return live


def test_a_cursor_replays_each_conversation_after_its_position_once(chat, unique):
    alice, carol = chat(f"alice-{unique}"), chat(f"carol-{unique}")
    bob = chat(f"bob-{unique}", queues=("sync", "messages", "conversations"))
    direct = alice.create("DIRECT", [bob.login])["conversationId"]
    group = carol.create("GROUP", [alice.login, bob.login], name="three")["conversationId"]
    bob.close()
    first = send_many(alice, direct, ["d1", "d2", "d3"]) + send_many(carol, group, ["g1", "g2"])

    bob = chat(bob.login, queues=("sync", "messages"))
    replay, done = cursor_sync(bob, {"cursor": {}})
    assert sorted(m["messageId"] for m in replay) == sorted(first)
    assert {(m["conversationId"], m["seq"], m["content"]) for m in replay} == {
        (direct, 1, "d1"), (direct, 2, "d2"), (direct, 3, "d3"), (group, 1, "g1"), (group, 2, "g2"),
    }
    assert done["cursor"] == {direct: 3, group: 2} and done["more"] is False and done["positions"] == {}
    bob.close()

    later = send_many(alice, direct, ["d4", "d5"])
    bob = chat(bob.login, queues=("sync", "messages"))
    replay, done = cursor_sync(bob, {"cursor": done["cursor"]})
    assert [(m["messageId"], m["seq"]) for m in replay] == [(later[0], 4), (later[1], 5)]
    assert done["cursor"] == {direct: 5, group: 2}
    replay, again = cursor_sync(bob, {"cursor": done["cursor"]})
    assert replay == [] and again["cursor"] == done["cursor"], "caught up: nothing, the cursor stays"


def test_what_the_client_got_live_is_placed_not_sent_again(chat, unique):
    alice = chat(f"alice-{unique}")
    bob = chat(f"bob-{unique}", queues=("sync", "messages"))
    direct = alice.create("DIRECT", [bob.login])["conversationId"]
    sent = send_many(alice, direct, ["a", "b", "c"])
    live = wait_live(bob, 3)
    assert [m["messageId"] for m in live] == sent
    replay, done = cursor_sync(bob, {"cursor": {}, "seen": sent[:2]})
    assert [(m["messageId"], m["seq"]) for m in replay] == [(sent[2], 3)], "only what it lacks"
    assert done["positions"] == {sent[0]: 1, sent[1]: 2}
    assert done["cursor"] == {direct: 3}


def test_pages_of_a_cursor_sync_continue_where_the_last_ended(chat, unique):
    alice, carol = chat(f"alice-{unique}"), chat(f"carol-{unique}")
    bob = chat(f"bob-{unique}", queues=("sync", "messages", "conversations"))
    direct = alice.create("DIRECT", [bob.login])["conversationId"]
    group = carol.create("GROUP", [alice.login, bob.login], name="paged")["conversationId"]
    sent = send_many(alice, direct, [f"d{i}" for i in range(4)]) + send_many(carol, group, [f"g{i}" for i in range(3)])
    wait_live(bob, 7)
    got, cursor, rounds = [], {}, 0
    while True:
        replay, done = cursor_sync(bob, {"cursor": cursor, "limit": 3})
        got += [m["messageId"] for m in replay]
        cursor = done["cursor"]
        rounds += 1
        if not done["more"]:
            break
        assert rounds < 5
    assert sorted(got) == sorted(sent) and len(got) == len(set(got)), "every message once"
    assert cursor == {direct: 4, group: 3}


def test_a_cursor_with_after_message_id_starts_unnamed_conversations_there(chat, unique):
    alice = chat(f"alice-{unique}")
    bob = chat(f"bob-{unique}", queues=("sync", "messages", "conversations"))
    one = alice.create("GROUP", [bob.login], name="one")["conversationId"]
    two = alice.create("GROUP", [bob.login], name="two")["conversationId"]
    old = send_many(alice, one, ["1a"]) + send_many(alice, two, ["2a"])
    new = send_many(alice, one, ["1b"]) + send_many(alice, two, ["2b"])
    wait_live(bob, 4)
    # An older client moving to the cursor: its last id for every conversation it cannot name.
    replay, done = cursor_sync(bob, {"cursor": {}, "afterMessageId": old[-1]})
    assert sorted(m["messageId"] for m in replay) == sorted(new)
    assert done["cursor"] == {one: 2, two: 2}


def test_a_sync_without_cursor_or_after_message_id_is_a_bad_request(chat, unique):
    bob = chat(f"bob-{unique}", queues=("sync", "errors"))
    bob.request("chat.sync", {})
    assert bob.event("errors")["code"] == "BAD_REQUEST"
    bob.none("sync", 0.2)
