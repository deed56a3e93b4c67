"""Chat receipts and typing over stomp.py: DELIVERED by ACK and by /app/chat.delivered, the READ
watermark that only moves forward, status never going back, typing with coalescing."""

import json
import re
import time

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def pair(chat, unique, **bob_options):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}", **bob_options)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    bob.event("conversations")
    return alice, bob, conversation


def test_ack_of_the_message_is_a_delivered_receipt(chat, unique):
    alice, bob, conversation = pair(chat, unique, messages_ack="client-individual")
    m = alice.send_message("ack me", conversation=conversation)
    frame = bob.frame("messages")
    assert frame.headers["message-id"] == m
    assert "ack" in frame.headers, "client-individual MESSAGE carries an ack header (1.2)"
    bob.client.sync(bob.conn.ack, frame.headers["ack"])

    receipt = alice.event("receipts")
    assert receipt["messageId"] == m
    assert receipt["conversationId"] == conversation
    assert receipt["userId"] == bob.login
    assert receipt["status"] == "DELIVERED"
    assert TIMESTAMP_RE.match(receipt["at"])
    bob.none("receipts", 0.2)  # the recipient is not told of his own delivery

    bob.call("chat.delivered", {"messageIds": [m]})  # already DELIVERED: status stays
    alice.none("receipts", 0.4)


def test_chat_delivered_reports_each_message_to_its_sender(chat, unique):
    alice, bob, conversation = pair(chat, unique)
    ids = [alice.send_message(f"m{i}", conversation=conversation) for i in range(3)]
    bob.events("messages", 3)
    bob.call("chat.delivered", {"messageIds": ids[:2]})
    receipts = alice.events("receipts", 2)
    assert sorted(r["messageId"] for r in receipts) == sorted(ids[:2])
    assert {r["status"] for r in receipts} == {"DELIVERED"}
    alice.none("receipts", 0.3)

    # The sender's own messages, and unknown ids, are ignored rather than refused.
    alice.call("chat.delivered", {"messageIds": [ids[2], "1"]})
    alice.none("receipts", 0.3)
    assert alice.drain("errors") == []


def test_group_delivered_receipts_are_per_recipient(chat, unique):
    alice, bob, carol = chat(f"alice-{unique}"), chat(f"bob-{unique}"), chat(f"carol-{unique}")
    gid = alice.create("GROUP", [bob.login, carol.login], name="trio")["conversationId"]
    m = alice.send_message("to both", conversation=gid)
    bob.call("chat.delivered", {"messageIds": [m]})
    assert alice.event("receipts")["userId"] == bob.login
    carol.call("chat.delivered", {"messageIds": [m]})
    assert alice.event("receipts")["userId"] == carol.login


def test_read_watermark_only_moves_forward(chat, unique):
    alice, bob, conversation = pair(chat, unique)
    m1, m2, m3 = (alice.send_message(f"m{i}", conversation=conversation) for i in range(1, 4))
    bob.events("messages", 3)

    bob.call("chat.read", {"conversationId": conversation, "messageId": m2})
    read = alice.event("receipts")
    assert read["status"] == "READ"
    assert read["upToMessageId"] == m2
    assert read["messageId"] == m2
    assert read["userId"] == bob.login
    assert read["conversationId"] == conversation

    bob.call("chat.read", {"conversationId": conversation, "messageId": m1})  # backwards
    bob.call("chat.read", {"conversationId": conversation, "messageId": m2})  # standing still
    alice.none("receipts", 0.4)

    bob.call("chat.read", {"conversationId": conversation, "messageId": m3})
    assert alice.event("receipts")["upToMessageId"] == m3

    # READ never falls back to DELIVERED.
    bob.call("chat.delivered", {"messageIds": [m1, m2, m3]})
    alice.none("receipts", 0.4)


def test_read_receipt_goes_only_to_senders_of_newly_read_messages(chat, unique):
    alice, bob, carol = chat(f"alice-{unique}"), chat(f"bob-{unique}"), chat(f"carol-{unique}")
    gid = alice.create("GROUP", [bob.login, carol.login], name="trio")["conversationId"]
    m1 = alice.send_message("from alice", conversation=gid)
    carol.call("chat.read", {"conversationId": gid, "messageId": m1})
    assert alice.event("receipts")["userId"] == carol.login
    m2 = bob.send_message("from bob", conversation=gid)
    carol.call("chat.read", {"conversationId": gid, "messageId": m2})
    assert bob.event("receipts")["upToMessageId"] == m2
    alice.none("receipts", 0.4)  # nothing of hers was newly read


def test_typing_reaches_other_members_and_repeats_are_coalesced(chat, unique):
    alice, bob, conversation = pair(chat, unique)
    bob_phone = chat(bob.login)
    alice.call("chat.typing", {"conversationId": conversation, "typing": True})
    for session in (bob, bob_phone):
        event = session.event("typing")
        assert event["conversationId"] == conversation
        assert event["userId"] == alice.login
        assert event["typing"] is True
        assert TIMESTAMP_RE.match(event["at"])
    alice.none("typing", 0.2)  # not echoed to the typist

    alice.call("chat.typing", {"conversationId": conversation, "typing": True})  # same state, < 1 s
    bob.none("typing", 0.4)

    alice.call("chat.typing", {"conversationId": conversation, "typing": False})  # a change goes out
    assert bob.event("typing")["typing"] is False

    time.sleep(1.1)  # past the coalescing window the same state is sent again
    alice.call("chat.typing", {"conversationId": conversation, "typing": False})
    assert bob.event("typing")["typing"] is False
    bob_phone.drain("typing")


def test_typing_is_never_stored(chat, unique):
    alice, bob, conversation = pair(chat, unique)
    alice.call("chat.typing", {"conversationId": conversation, "typing": True})
    bob.event("typing")
    bob.call("chat.sync", {"afterMessageId": "0"})
    assert json.loads(bob.frame("sync").body)["more"] is False
    bob.none("messages", 0.1)


def test_offline_recipient_acks_a_synced_message_as_delivered(chat, unique):
    alice, bob, conversation = pair(chat, unique)
    bob.close()
    m = alice.send_message("while you were away", conversation=conversation)
    alice.none("receipts", 0.4)  # waits as SENT

    bob = chat(bob.login, messages_ack="client-individual")
    bob.call("chat.sync", {"afterMessageId": "0"})
    frame = bob.frame("messages")
    assert frame.headers["message-id"] == m
    bob.client.sync(bob.conn.ack, frame.headers["ack"])
    receipt = alice.event("receipts")
    assert (receipt["messageId"], receipt["status"], receipt["userId"]) == (m, "DELIVERED", bob.login)


def test_receipts_reach_every_session_of_the_sender(chat, unique):
    alice, bob, conversation = pair(chat, unique)
    alice_phone = chat(alice.login)
    m = alice.send_message("seen on both", conversation=conversation)
    bob.call("chat.delivered", {"messageIds": [m]})
    bob.call("chat.read", {"conversationId": conversation, "messageId": m})
    for session in (alice, alice_phone):
        assert [r["status"] for r in session.events("receipts", 2)] == ["DELIVERED", "READ"]


def test_read_with_an_id_from_the_future_does_not_pre_read_later_messages(chat, unique):
    alice, bob, conversation = pair(chat, unique)
    m1 = alice.send_message("now", conversation=conversation)
    bob.call("chat.read", {"conversationId": conversation, "messageId": str(2**64 - 1)})
    assert alice.event("receipts")["upToMessageId"] == m1, "the watermark lands on a real message"
    m2 = alice.send_message("later", conversation=conversation)
    bob.call("chat.read", {"conversationId": conversation, "messageId": m2})
    assert alice.event("receipts")["upToMessageId"] == m2
