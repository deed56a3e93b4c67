"""The backend services' HTTP API (`/api/...` on the HTTP port, bearer service token) with the
STOMP contract's semantics: conversations, members, posting as a named sender with live delivery
to STOMP sessions, history; 401 without the token."""

import json
import urllib.error
import urllib.request

import pytest

from conftest import start_broker

TOKEN = "test-service-token"


@pytest.fixture(scope="module")
def api_broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("api-broker"), "--service-token", TOKEN)
    yield b
    b.stop()


@pytest.fixture
def api(api_broker):
    """`api(method, path, body=None, token=TOKEN)` → (status, JSON body or None)."""

    def call(method, path, body=None, token=TOKEN):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://{api_broker.host}:{api_broker.http_port}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return status, (json.loads(raw) if raw else None)

    return call


def test_requests_without_the_right_token_are_401(api, unique):
    body = {"type": "DIRECT", "members": [f"b-{unique}"], "creator": f"a-{unique}"}
    for token in (None, "wrong-token", TOKEN + "x", ""):
        status, reply = api("POST", "/api/conversations", body, token=token)
        assert status == 401, (token, status, reply)
        assert reply["code"] == "UNAUTHORIZED"
    status, _ = api("GET", f"/api/conversations/g:1/messages?asUser=a-{unique}", token=None)
    assert status == 401
    status, _ = api("POST", "/api/messages", {"senderId": "x", "recipientId": "y", "content": "z"}, token="nope")
    assert status == 401
    # Nothing was created by the refused calls.
    status, reply = api("POST", "/api/conversations", body)
    assert status == 201


def test_post_message_is_delivered_live_and_readable_as_history(api, chat, api_broker, unique):
    bot, ann, ben = f"bot-{unique}", f"ann-{unique}", f"ben-{unique}"
    ann_session = chat(ann, target=api_broker)
    status, group = api("POST", "/api/conversations", {"type": "GROUP", "name": "ops", "members": [ann], "creator": bot})
    assert status == 201
    gid = group["conversationId"]
    assert group["creator"] == bot and sorted(group["members"]) == sorted([bot, ann])
    assert ann_session.event("conversations")["conversation"]["conversationId"] == gid

    status, updated = api("POST", f"/api/conversations/{gid}/members", {"add": [ben], "asUser": bot})
    assert status == 200
    assert sorted(updated["members"]) == sorted([bot, ann, ben])
    assert ann_session.event("conversations")["event"] == "updated"
    ben_session = chat(ben, target=api_broker)

    status, posted = api("POST", "/api/messages", {"senderId": bot, "conversationId": gid, "content": "deploy done", "clientMessageId": "cm-1"})
    assert status == 201
    assert set(posted) >= {"messageId", "conversationId", "timestamp"}
    assert posted["conversationId"] == gid
    for session in (ann_session, ben_session):
        frame = session.frame("messages")
        body = json.loads(frame.body)
        assert frame.headers["message-id"] == posted["messageId"]
        assert (body["senderId"], body["content"], body["timestamp"]) == (bot, "deploy done", posted["timestamp"])

    status, again = api("POST", "/api/messages", {"senderId": bot, "conversationId": gid, "content": "deploy done", "clientMessageId": "cm-1"})
    assert status in (200, 201)
    assert again["messageId"] == posted["messageId"], "a retry returns the original id"
    ann_session.none("messages", 0.4)

    status, history = api("GET", f"/api/conversations/{gid}/messages?asUser={ann}&limit=10")
    assert status == 200
    assert history["conversationId"] == gid and history["hasMore"] is False
    assert [m["messageId"] for m in history["messages"]] == [posted["messageId"]]


def test_post_by_recipient_and_history_paging(api, chat, api_broker, unique):
    bot, ann = f"bot-{unique}", f"ann-{unique}"
    ids = []
    for i in range(5):
        status, posted = api("POST", "/api/messages", {"senderId": bot, "recipientId": ann, "content": f"n{i}"})
        assert status == 201
        ids.append(posted["messageId"])
    cid = posted["conversationId"]
    status, page = api("GET", f"/api/conversations/{cid}/messages?asUser={ann}&limit=3")
    assert status == 200
    assert [m["messageId"] for m in page["messages"]] == ids[2:] and page["hasMore"] is True
    status, page = api("GET", f"/api/conversations/{cid}/messages?asUser={ann}&limit=3&before={ids[2]}")
    assert [m["messageId"] for m in page["messages"]] == ids[:2] and page["hasMore"] is False

    ann_session = chat(ann, target=api_broker)  # offline when they were posted: sync finds them
    ann_session.call("chat.sync", {"afterMessageId": "0"})
    assert ann_session.event("sync")["upToMessageId"] == ids[-1]
    assert [m["messageId"] for m in ann_session.drain("messages")] == ids


def test_api_errors_carry_the_chat_codes(api, unique):
    bot, ann, eve = f"bot-{unique}", f"ann-{unique}", f"eve-{unique}"
    status, group = api("POST", "/api/conversations", {"type": "GROUP", "name": "g", "members": [ann], "creator": bot})
    gid = group["conversationId"]
    cases = [
        (("POST", "/api/messages", {"senderId": eve, "conversationId": gid, "content": "x"}), 403, "NOT_A_MEMBER"),
        (("POST", "/api/messages", {"senderId": bot, "conversationId": "g:1", "content": "x"}), 404, "UNKNOWN_CONVERSATION"),
        (("POST", "/api/messages", {"senderId": bot, "content": "x"}), 400, "BAD_REQUEST"),
        (("POST", "/api/messages", {"conversationId": gid, "content": "x"}), 400, "BAD_REQUEST"),
        (("POST", "/api/messages", {"senderId": bot, "conversationId": gid, "content": "x" * 16385}), 400, "CONTENT_TOO_LARGE"),
        (("POST", f"/api/conversations/{gid}/members", {"add": [eve], "asUser": ann}), 403, "FORBIDDEN"),
        (("GET", f"/api/conversations/{gid}/messages?asUser={eve}", None), 403, "NOT_A_MEMBER"),
    ]
    for request, want_status, want_code in cases:
        status, reply = api(*request)
        assert (status, reply and reply.get("code")) == (want_status, want_code), request
    status, history = api("GET", f"/api/conversations/{gid}/messages?asUser={bot}")
    assert history["messages"] == [], "nothing stored by the refused posts"


def test_api_is_absent_without_a_service_token(broker):
    request = urllib.request.Request(
        f"http://{broker.host}:{broker.http_port}/api/messages",
        data=b'{"senderId":"a","recipientId":"b","content":"c"}', method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer anything"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code in (404, 405)


def test_unauthenticated_requests_are_401_whatever_their_body(api_broker):
    base = f"http://{api_broker.host}:{api_broker.http_port}"
    for method, path, data, content_type in [
        ("POST", "/api/messages", b"not json", "application/json"),
        ("POST", "/api/messages", b'{"senderId":"a"}', None),
        ("GET", "/api/conversations/g:1/messages", None, None),  # no asUser either
    ]:
        request = urllib.request.Request(base + path, data=data, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401, f"{method} {path} {data!r}: {refused.value.code}"


def test_post_retry_answers_like_the_original(api, unique):
    bot, ann = f"bot-{unique}", f"ann-{unique}"
    body = {"senderId": bot, "recipientId": ann, "content": "once", "clientMessageId": "cm-once"}
    status, original = api("POST", "/api/messages", body)
    assert status == 201
    status, retry = api("POST", "/api/messages", body)
    assert status in (200, 201)
    assert {k: retry.get(k) for k in ("messageId", "conversationId", "timestamp")} == original
