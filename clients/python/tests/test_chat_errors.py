"""Chat application errors over stomp.py: each arrives on /user/queue/errors as
`{code, message, receiptId?, clientMessageId?}`, with no RECEIPT, the connection open, and
nothing stored."""

import json
import time

import pytest


def expect_error(session, action, body, code, *, client_message_id=None):
    """Sends a failing request with a receipt; checks the error and that no RECEIPT came, then
    that the connection still works."""
    receipt_id = session.request(action, body)
    error = session.event("errors")
    assert error["code"] == code, error
    assert error["receiptId"] == receipt_id
    assert isinstance(error["message"], str) and error["message"]
    assert error.get("clientMessageId") == client_message_id
    session.client.send(f"/topic/ping-{receipt_id}", "still here")  # waits for its RECEIPT
    assert not session.got_receipt(receipt_id), f"{action} failed with {code} yet got a RECEIPT"
    session.none("errors", 0.05)
    return error


def stored(session, conversation):
    session.call("chat.history", {"conversationId": conversation})
    return [m["content"] for m in session.event("history")["messages"]]


@pytest.fixture
def pair(chat, unique):
    alice, bob = chat(f"alice-{unique}"), chat(f"bob-{unique}")
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]
    return alice, bob, conversation


def test_malformed_json_is_bad_request(pair):
    alice, bob, conversation = pair
    expect_error(alice, "chat.send", '{"conversationId": "' + conversation + '", "content": ', "BAD_REQUEST")
    expect_error(alice, "chat.send", "", "BAD_REQUEST")
    expect_error(alice, "chat.send", "[1, 2]", "BAD_REQUEST")
    assert stored(alice, conversation) == []
    bob.none("messages", 0.1)


def test_missing_and_unknown_fields_are_bad_request(pair):
    alice, bob, conversation = pair
    expect_error(alice, "chat.send", {"conversationId": conversation}, "BAD_REQUEST")
    expect_error(alice, "chat.read", {"conversationId": conversation}, "BAD_REQUEST")
    expect_error(alice, "chat.typing", {"typing": True}, "BAD_REQUEST")
    expect_error(alice, "conversation.create", {"members": [bob.login]}, "BAD_REQUEST")
    # senderId is the authenticated login, never the body's: the field is refused outright.
    expect_error(
        alice, "chat.send",
        {"conversationId": conversation, "content": "spoof", "senderId": bob.login, "clientMessageId": "cm-spoof"},
        "BAD_REQUEST", client_message_id="cm-spoof",
    )
    expect_error(alice, "chat.sync", {"afterMessageId": "not-a-number"}, "BAD_REQUEST")
    expect_error(alice, "chat.send", {"conversationId": conversation, "content": 5}, "BAD_REQUEST")
    expect_error(alice, "conversation.create", {"type": "GROUP", "members": ["bad/name"]}, "BAD_REQUEST")
    expect_error(alice, "conversation.create", {"type": "CHANNEL", "members": [bob.login]}, "BAD_REQUEST")
    assert stored(alice, conversation) == []
    bob.none("messages", 0.1)


def test_both_or_neither_of_conversation_and_recipient_is_bad_request(pair):
    alice, bob, conversation = pair
    expect_error(
        alice, "chat.send",
        {"conversationId": conversation, "recipientId": bob.login, "content": "x", "clientMessageId": "cm-both"},
        "BAD_REQUEST", client_message_id="cm-both",
    )
    expect_error(alice, "chat.send", {"content": "x"}, "BAD_REQUEST")
    assert stored(alice, conversation) == []


def test_direct_conversation_needs_exactly_two_members(chat, unique):
    alice = chat(f"alice-{unique}")
    expect_error(alice, "conversation.create", {"type": "DIRECT", "members": [f"b-{unique}", f"c-{unique}"]}, "BAD_REQUEST")
    expect_error(alice, "conversation.create", {"type": "DIRECT", "members": []}, "BAD_REQUEST")
    alice.none("conversations", 0.1)


def test_content_over_the_limit_is_refused_in_bytes(pair):
    alice, bob, conversation = pair
    limit = 16 * 1024
    expect_error(
        alice, "chat.send",
        {"conversationId": conversation, "content": "x" * (limit + 1), "clientMessageId": "cm-big"},
        "CONTENT_TOO_LARGE", client_message_id="cm-big",
    )
    # 8193 characters, 16386 bytes of UTF-8: the limit counts bytes.
    expect_error(alice, "chat.send", {"conversationId": conversation, "content": "é" * 8193}, "CONTENT_TOO_LARGE")
    alice.send_message("x" * limit, conversation=conversation)  # exactly at the limit is fine
    assert len(json.loads(bob.frame("messages").body)["content"]) == limit
    assert [len(c) for c in stored(alice, conversation)] == [limit]


def test_unknown_conversation(pair):
    alice, _, _ = pair
    for action, body in [
        ("chat.send", {"conversationId": "g:1", "content": "x", "clientMessageId": "cm-u"}),
        ("chat.history", {"conversationId": "g:1"}),
        ("chat.read", {"conversationId": "g:1", "messageId": "1"}),
        ("chat.typing", {"conversationId": "g:1", "typing": True}),
        ("conversation.members", {"conversationId": "g:1", "add": ["x"]}),
    ]:
        expect_error(
            alice, action, body, "UNKNOWN_CONVERSATION",
            client_message_id="cm-u" if action == "chat.send" else None,
        )


def test_not_a_member(pair, chat, unique):
    alice, bob, conversation = pair
    mallory = chat(f"mallory-{unique}")
    for action, body in [
        ("chat.send", {"conversationId": conversation, "content": "let me in"}),
        ("chat.history", {"conversationId": conversation}),
        ("chat.read", {"conversationId": conversation, "messageId": "1"}),
        ("chat.typing", {"conversationId": conversation, "typing": True}),
    ]:
        expect_error(mallory, action, body, "NOT_A_MEMBER")
    assert stored(alice, conversation) == []
    bob.none("typing", 0.1)
    bob.none("messages", 0.1)


def test_member_changes_by_a_non_admin_and_of_a_direct_conversation_are_forbidden(pair, chat, unique):
    alice, bob, conversation = pair
    group = alice.create("GROUP", [bob.login], name="g")["conversationId"]
    expect_error(bob, "conversation.members", {"conversationId": group, "add": [f"eve-{unique}"]}, "FORBIDDEN")
    expect_error(alice, "conversation.members", {"conversationId": conversation, "add": [f"eve-{unique}"]}, "FORBIDDEN")
    eve = chat(f"eve-{unique}")
    eve.call("conversation.list", {})
    assert eve.event("conversations")["conversations"] == []


def test_member_cap_refuses_the_change_before_anything_is_stored(pair, chat, unique):
    """A change that would take a group past 1,000 members is BAD_REQUEST and changes nothing:
    no member added, no `updated` event (the members were once stored before the check)."""
    alice, bob, _ = pair
    group = alice.create("GROUP", [bob.login], name="big")["conversationId"]
    # bob's own "created" events (the pair's conversation, then the group) arrive on his
    # connection in their own time: wait for the group's before watching for silence.
    while bob.event("conversations")["conversation"]["conversationId"] != group:
        pass
    crowd = [f"u{i}-{unique}" for i in range(999)]
    expect_error(alice, "conversation.members", {"conversationId": group, "add": crowd}, "BAD_REQUEST")
    bob.none("conversations", 0.2)
    late = chat(crowd[0])
    late.call("conversation.list", {})
    assert late.event("conversations")["conversations"] == []
    alice.call("conversation.list", {})
    [listed] = [c for c in alice.event("conversations")["conversations"] if c["conversationId"] == group]
    assert sorted(listed["members"]) == sorted([alice.login, bob.login])


def test_unknown_app_destination(chat, unique):
    alice = chat(f"alice-{unique}")
    expect_error(alice, "nope", {}, "UNKNOWN_DESTINATION")
    expect_error(alice, "chat.nope", {"x": 1}, "UNKNOWN_DESTINATION")


def test_every_chat_request_is_rate_limited_and_the_bucket_refills(broker_factory, chat, unique):
    """--chat-rate counts every request a user makes, reads included: a user looping on sync or
    history cannot fill the node's request queue for everyone. 0.5 tokens/s, so the bucket
    cannot refill by a whole token during the back-to-back requests, however slow the machine."""
    target = broker_factory("--chat-rate", "0.5", "--chat-burst", "3")
    alice = chat(f"alice-{unique}", target=target)
    bob = chat(f"bob-{unique}", target=target)
    conversation = alice.create("DIRECT", [bob.login])["conversationId"]  # the first token
    # Back to back, not each after its RECEIPT: the bucket must not refill while a slower
    # store (Kafka in the streamed mode) acknowledges.
    burst = [alice.request("chat.send", {"conversationId": conversation, "content": f"burst {i}"}) for i in range(2)]
    one_too_many = alice.request(
        "chat.send", {"conversationId": conversation, "content": "one too many", "clientMessageId": "cm-r"}
    )
    a_read_too = alice.request("chat.sync", {"afterMessageId": "0"})
    errors = alice.events("errors", 2)
    assert [(e["code"], e["receiptId"]) for e in errors] == [
        ("RATE_LIMITED", one_too_many),
        ("RATE_LIMITED", a_read_too),
    ], errors
    assert errors[0]["clientMessageId"] == "cm-r"
    for receipt_id in burst:
        alice.listener.wait_receipt(receipt_id)
    assert not alice.got_receipt(one_too_many) and not alice.got_receipt(a_read_too)
    bob.send_message("bob has his own bucket", conversation=conversation)
    time.sleep(2.2)  # 0.5 per second: one token back
    alice.send_message("after a pause", conversation=conversation)
    assert stored(bob, conversation) == ["burst 0", "burst 1", "bob has his own bucket", "after a pause"]


def test_errors_go_only_to_the_requesting_session(chat, unique):
    alice = chat(f"alice-{unique}")
    alice_phone = chat(alice.login)
    expect_error(alice, "chat.send", {"content": "x"}, "BAD_REQUEST")
    alice_phone.none("errors", 0.4)


def test_sending_to_yourself_is_refused_like_creating_it(chat, unique):
    alice = chat(f"alice-{unique}")
    expect_error(alice, "conversation.create", {"type": "DIRECT", "members": [alice.login]}, "BAD_REQUEST")
    expect_error(alice, "chat.send", {"recipientId": alice.login, "content": "note to self"}, "BAD_REQUEST")
    alice.none("messages", 0.2)


def test_sending_to_an_invalid_user_name_is_bad_request_and_stores_nothing(chat, unique):
    # conversation.create refuses such members; a send by recipientId must not create them.
    alice = chat(f"alice-{unique}")
    for recipient in ("bad/name", "ctrl\u0001char", ""):
        expect_error(alice, "chat.send", {"recipientId": recipient, "content": "hi"}, "BAD_REQUEST")
    alice.none("messages", 0.2)
    alice.call("conversation.list", {})
    assert alice.event("conversations")["conversations"] == []
