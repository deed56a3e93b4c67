"""Chat messaging over stomp.py: conversations, 1:1 in both directions, a 50-member group on
several sessions, idempotent retry, and the `/topic/conversation.<id>` room."""

import json
import re
import threading
import time

import pytest

import deployment
from conftest import WAIT_S

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_message(frame, *, message_id, conversation, sender, content, client_message_id=None):
    body = json.loads(frame.body)
    assert frame.headers["message-id"] == message_id
    assert frame.headers["destination"] == "/user/queue/messages"
    assert body["messageId"] == message_id
    assert body["conversationId"] == conversation
    assert body["senderId"] == sender
    assert body["content"] == content
    assert body["contentType"] == "text/plain"
    assert body["clientMessageId"] == client_message_id
    assert TIMESTAMP_RE.match(body["timestamp"]), body["timestamp"]
    return body


def test_direct_conversation_id_is_the_same_from_both_sides(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    first = alice.create("DIRECT", [bob.login])
    assert first["type"] == "DIRECT"
    assert sorted(first["members"]) == sorted([alice.login, bob.login])
    assert first["creator"] == alice.login
    assert TIMESTAMP_RE.match(first["createdAt"])
    assert bob.event("conversations")["conversation"]["conversationId"] == first["conversationId"]

    again = bob.create("DIRECT", [alice.login])
    assert again["conversationId"] == first["conversationId"]


def test_one_to_one_in_both_directions(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    alice_phone = chat(alice.login)  # the sender's other session gets her own message too
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]

    m1 = alice.send_message("hi bob", conversation=conversation, clientMessageId="c-1")
    for session in (bob, alice, alice_phone):
        assert_message(
            session.frame("messages"), message_id=m1, conversation=conversation, sender=alice.login,
            content="hi bob", client_message_id="c-1",
        )

    m2 = bob.send_message("hi alice", recipient=alice.login)  # by recipient: the same DIRECT id
    for session in (alice, alice_phone, bob):
        assert_message(
            session.frame("messages"), message_id=m2, conversation=conversation, sender=bob.login,
            content="hi alice",
        )
    assert int(m2) > int(m1), "ids are time-sortable and strictly increasing"
    for session in (alice, alice_phone, bob):
        session.none("messages", 0.3)


def test_send_by_recipient_creates_the_direct_conversation(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    m = alice.send_message("first contact", recipient=bob.login)
    body = json.loads(bob.frame("messages").body)
    assert body["messageId"] == m
    assert body["conversationId"].startswith("d:")
    assert bob.create("DIRECT", [alice.login])["conversationId"] == body["conversationId"]


def test_content_type_is_carried(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    alice.send_message('{"x":1}', recipient=bob.login, contentType="application/json")
    assert json.loads(bob.frame("messages").body)["contentType"] == "application/json"


def test_idempotent_retry_returns_the_original_id_and_delivers_nothing_new(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    original = alice.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}")
    assert json.loads(bob.frame("messages").body)["messageId"] == original

    retry = alice.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}")
    assert retry == original
    bob.none("messages", 0.5)
    alice.frame("messages")  # her own copy of the original
    alice.none("messages", 0.1)

    # Another sender may use the same clientMessageId: it is scoped per sender.
    other = bob.send_message("mine", conversation=conversation, clientMessageId=f"cm-{unique}")
    assert other != original
    assert json.loads(alice.frame("messages").body)["messageId"] == other

    alice.call("chat.history", {"conversationId": conversation})
    history = alice.event("history")
    assert [m["messageId"] for m in history["messages"]] == [original, other]


@deployment.cluster_only("a retry through a node other than the one that stored the original")
def test_retry_through_another_node_delivers_the_original_once_more(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    alice_phone = chat(alice.login)  # her next session: on the next node
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    alice_phone.event("conversations")
    original = alice.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}")
    assert json.loads(bob.frame("messages").body)["messageId"] == original
    alice.frame("messages"), alice_phone.frame("messages")
    # With Kafka another node finds the original once the sink stored it; history waits for that.
    alice.call("chat.history", {"conversationId": conversation})
    alice.event("history")

    # The phone's node did not store it, so cannot know it was delivered: it delivers it again,
    # under the original id -- once: its second retry delivers nothing.
    assert alice_phone.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}") == original
    assert json.loads(bob.frame("messages").body)["messageId"] == original
    assert alice_phone.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}") == original
    # And the node that stored it delivers nothing on a retry either.
    assert alice.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}") == original
    bob.none("messages", 0.5)

    alice.call("chat.history", {"conversationId": conversation})
    assert [m["messageId"] for m in alice.event("history")["messages"]] == [original]


@deployment.cluster_only("a retry through another node while the sink lags")
def test_retry_through_another_node_before_the_sink_stored_it_gets_the_original_id(broker_factory, chat, unique):
    """Kafka mode: the original is in Kafka but not yet in PostgreSQL (the sink is paused), so
    only a claim shared by the nodes can tell the phone's node it is a retry."""
    if deployment.storage() != "streamed":
        pytest.skip("Kafka mode only: without a sink PostgreSQL has the original at once")
    import conftest

    cluster = broker_factory()
    store = conftest.STORAGES[cluster.data_dir]
    alice, bob = chat(f"alice-{unique}", target=cluster), chat(f"bob-{unique}", target=cluster)
    alice_phone = chat(alice.login, target=cluster)  # her next session: on the next node
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    alice_phone.event("conversations")

    store.sink.pause()
    try:
        original = alice.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}")
        assert json.loads(bob.frame("messages").body)["messageId"] == original
        # Right after, through another node: same id, however far behind the sink is.
        retry = alice_phone.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}")
        assert retry == original, "a retry through another node was taken as a new message"
        again = alice.send_message("once", conversation=conversation, clientMessageId=f"cm-{unique}")
        assert again == original
    finally:
        store.sink.resume()

    # History waits for the sink to catch up: one row, under the original id.
    alice.call("chat.history", {"conversationId": conversation})
    assert [m["messageId"] for m in alice.event("history")["messages"]] == [original]
    rows = store.rows(f"SELECT message_id FROM messages WHERE conversation_id = '{conversation}'")
    assert rows == [[original]], rows
    # Any further copy bob got is the original again (the phone's node redelivers it once).
    assert {m["messageId"] for m in bob.drain("messages")} <= {original}


def test_group_of_fifty_each_session_receives_each_message_exactly_once(chat, unique):
    members = [f"m{i:02d}-{unique}" for i in range(50)]
    queues = ("messages", "conversations")
    sessions = [chat(m, queues=queues) for m in members]
    sessions += [chat(m, queues=queues) for m in members[:10]]  # ten members on a second device
    assert len(sessions) == 60

    creator = sessions[0]
    group = creator.create("GROUP", members[1:], name=f"fifty-{unique}")
    assert group["type"] == "GROUP" and group["name"] == f"fifty-{unique}"
    assert sorted(group["members"]) == sorted(members)
    assert group["admins"] == [creator.login]
    for s in sessions[1:]:
        assert s.event("conversations")["conversation"]["conversationId"] == group["conversationId"]

    senders = [sessions[0], sessions[17], sessions[55]]
    sent = [s.send_message(f"hello from {s.login}", conversation=group["conversationId"]) for s in senders]
    deadline = time.monotonic() + WAIT_S
    for s in sessions:
        got = [json.loads(s.frame("messages", max(deadline - time.monotonic(), 0.01)).body) for _ in sent]
        if deployment.clustered():
            # Across nodes the contract is id order per accepting node (docs/protocol.md,
            # Order): a message another node accepted comes through Redis, and one this node
            # accepts next can be delivered before it. Ids are time-sortable, so id order is
            # the send order.
            got.sort(key=lambda m: int(m["messageId"]))
        assert [m["messageId"] for m in got] == sent, f"{s.login}: order or set differs"
        assert [m["senderId"] for m in got] == [x.login for x in senders]
    for s in sessions:
        s.none("messages", 0.02)
    sessions[5].none("messages", 0.5)  # and nothing late


def test_group_members_change_by_creator_only(chat, unique):
    owner, ann, ben, cid = (chat(f"{n}-{unique}") for n in ("owner", "ann", "ben", "cid"))
    group = owner.create("GROUP", [ann.login, ben.login], name="team")
    gid = group["conversationId"]
    ann.event("conversations"), ben.event("conversations")

    ann.request("conversation.members", {"conversationId": gid, "add": [cid.login]})
    assert ann.event("errors")["code"] == "FORBIDDEN"

    owner.call("conversation.members", {"conversationId": gid, "add": [cid.login], "remove": [ben.login]})
    for s in (owner, ann, ben, cid):  # old and new members hear of it
        event = s.event("conversations")
        assert event["event"] == "updated"
        assert sorted(event["conversation"]["members"]) == sorted([owner.login, ann.login, cid.login])

    m = owner.send_message("welcome cid", conversation=gid)
    for s in (ann, cid):
        assert json.loads(s.frame("messages").body)["messageId"] == m
    ben.none("messages", 0.3)

    cid.call("conversation.list", {})
    listed = cid.event("conversations")["conversations"]
    assert [c["conversationId"] for c in listed] == [gid]


def test_conversation_list_answers_only_the_requesting_session(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    alice_phone = chat(alice.login)
    direct = alice.create("DIRECT", [bob.login])
    group = alice.create("GROUP", [bob.login], name="g")
    alice_phone.events("conversations", 2)

    alice.call("conversation.list", {})
    ids = sorted(c["conversationId"] for c in alice.event("conversations")["conversations"])
    assert ids == sorted([direct["conversationId"], group["conversationId"]])
    alice_phone.none("conversations", 0.3)


def test_members_watch_the_conversation_topic_and_others_are_denied(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    room = f"/topic/conversation.{conversation}"
    bob.event("conversations")  # a member may watch once told (in a cluster, by its own node)
    bob.client.subscribe(room, "room")
    m = alice.send_message("to the room", conversation=conversation)
    frame = bob.listener.message()
    assert frame.headers["destination"] == room
    assert frame.headers["message-id"] == m
    assert json.loads(frame.body)["content"] == "to the room"

    mallory = chat(f"mallory-{unique}", queues=())
    mallory.conn.subscribe(room, "peek", receipt="r-peek")
    assert mallory.listener.error().headers["message"] == "access denied"


def test_chat_messages_are_json_with_the_id_header(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    m = alice.send_message("typed", recipient=bob.login)
    frame = bob.frame("messages")
    assert frame.headers["content-type"].startswith("application/json")
    assert frame.headers["message-id"] == m


def test_retry_with_other_content_still_returns_the_original(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    original = alice.send_message("first draft", recipient=bob.login, clientMessageId="cm-edit")
    bob.frame("messages")
    assert alice.send_message("second draft", recipient=bob.login, clientMessageId="cm-edit") == original
    bob.none("messages", 0.4)


def test_removed_member_no_longer_hears_the_room_topic(chat, unique):
    owner, ann = chat(f"owner-{unique}"), chat(f"ann-{unique}")
    gid = owner.create("GROUP", [ann.login], name="room")["conversationId"]
    room = f"/topic/conversation.{gid}"
    ann.event("conversations")  # a member may watch once told (in a cluster, by its own node)
    ann.client.subscribe(room, "room")
    owner.send_message("while a member", conversation=gid)
    assert json.loads(ann.listener.message().body)["content"] == "while a member"
    ann.frame("messages")  # and its /user/queue copy

    owner.call("conversation.members", {"conversationId": gid, "remove": [ann.login]})
    owner.send_message("after removal", conversation=gid)
    ann.none("messages", 0.3)
    ann.listener.no_message(0.5)  # the room subscription must not keep leaking the group


def test_member_added_later_may_watch_the_room(chat, unique):
    owner, ann = chat(f"owner-{unique}"), chat(f"ann-{unique}")
    gid = owner.create("GROUP", [], name="later")["conversationId"]
    owner.call("conversation.members", {"conversationId": gid, "add": [ann.login]})
    ann.event("conversations")  # a member may watch once told (in a cluster, by its own node)
    ann.client.subscribe(f"/topic/conversation.{gid}", "room")  # RECEIPT, not ERROR
    m = owner.send_message("welcome", conversation=gid)
    assert ann.listener.message().headers["message-id"] == m


def test_members_cannot_send_to_the_room_topic_directly(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    alice.conn.send(f"/topic/conversation.{conversation}", "bypass", receipt="r-bypass")
    assert alice.listener.error().headers["message"] == "access denied"
    bob.none("messages", 0.3)


def test_pipelined_retries_of_one_message_store_and_deliver_it_once(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    receipts = [
        alice.request("chat.send", {"conversationId": conversation, "content": "dup", "clientMessageId": "storm"})
        for _ in range(5)
    ]  # none waits for the one before: the retries race the first store
    for r in receipts:
        alice.listener.wait_receipt(r)
    ids = {alice.listener.receipt_frames[r].headers["message-id"] for r in receipts}
    assert len(ids) == 1
    assert json.loads(bob.frame("messages").body)["messageId"] in ids
    bob.none("messages", 0.5)


@deployment.single_node_only(
    "delivery order is id order among the messages one node accepted (docs/protocol.md, Sending: "
    "Order); three senders on three nodes take ids on three clocks"
)
def test_concurrent_senders_are_delivered_to_every_member_in_id_order(chat, unique):
    alice, bob, carol = (chat(f"{n}-{unique}") for n in ("alice", "bob", "carol"))
    gid = alice.create("GROUP", [bob.login, carol.login], name="busy")["conversationId"]
    sent: dict[str, list[str]] = {}

    def burst(session):
        rs = [session.request("chat.send", {"conversationId": gid, "content": f"{session.login} {i}"}) for i in range(15)]
        for r in rs:
            session.listener.wait_receipt(r, WAIT_S * 2)
        sent[session.login] = [session.listener.receipt_frames[r].headers["message-id"] for r in rs]

    threads = [threading.Thread(target=burst, args=(s,)) for s in (alice, bob, carol)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 3)
    assert len(sent) == 3
    every = sorted((m for ids in sent.values() for m in ids), key=int)
    for s in (alice, bob, carol):
        got = [json.loads(s.frame("messages").body)["messageId"] for _ in every]
        assert got == every, f"{s.login}: live delivery order is id order"
