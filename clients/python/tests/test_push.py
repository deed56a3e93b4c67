"""Push notifications for offline users (docs/push.md), against the real broker and a local
webhook receiver that checks the HMAC-SHA256 signature the way an integrator would: device
registration over STOMP and the service API, one coalesced notification per user and window,
cancellation by presence and by receipts, Retry-After honoured, the dispatch queue shedding
(counted), and three cluster nodes on one Redis sending one notification between them."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import deployment
from conftest import start_node

SECRET = "push-test-secret"
# Short windows keep the suite fast; the default (3 s) is only a default.
COALESCE_S = 1.0
# How long after a window ends a notification may take to reach the receiver (a debug build
# on a loaded machine): a bound on waiting, not a speed assertion.
ARRIVAL_S = 6.0
# How long "none arrives" is watched after a window would have fired.
QUIET_S = COALESCE_S + 1.5


class Webhook:
    """A webhook receiver on loopback: verifies `Stompbox-Signature` (HMAC-SHA256 over
    "<t>.<body>", constant-time compare, fresh `t`), records each verified notification, and
    answers what the test scripted (`answers`: (status, headers) for the first requests, then
    200). `delay` holds every answer that long (a slow integrator)."""

    def __init__(self, answers=(), delay: float = 0.0):
        self.received: queue.Queue = queue.Queue()
        self.bad_signatures = 0
        self.requests: list[float] = []
        self._answers = list(answers)
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with hook._lock:
                    hook.requests.append(time.monotonic())
                    answer = hook._answers.pop(0) if hook._answers else (200, {})
                if not verified(self.headers.get("stompbox-signature", ""), body):
                    with hook._lock:
                        hook.bad_signatures += 1
                    answer = (401, {})
                elif answer[0] == 200:
                    hook.received.put(json.loads(body))
                if delay:
                    time.sleep(delay)
                self.send_response(answer[0])
                for name, value in answer[1].items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def args(self, *extra: str, coalesce: str = f"{int(COALESCE_S * 1000)}ms") -> tuple[str, ...]:
        return ("--push-webhook-url", self.url, "--push-webhook-secret", SECRET,
                "--push-coalesce", coalesce, *extra)

    def notification(self, timeout: float = COALESCE_S + ARRIVAL_S) -> dict:
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no push notification within {timeout}s") from None

    def none(self, within: float = QUIET_S) -> None:
        try:
            got = self.received.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected push notification: {got!r}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verified(header: str, body: bytes) -> bool:
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    if not match:
        return False
    timestamp, signature = match.groups()
    if abs(time.time() - int(timestamp)) > 300:  # a replay of an old request
        return False
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@pytest.fixture
def webhook():
    hooks: list[Webhook] = []

    def make(answers=(), delay: float = 0.0) -> Webhook:
        hook = Webhook(answers, delay)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def registered_offline(chat, broker, login: str, token: str) -> None:
    """`login` registers an FCM device over STOMP (RECEIPT once stored), then goes offline."""
    device = chat(login, target=broker)
    device.call("push.register", {"platform": "fcm", "token": token})
    assert device.drain("errors") == []
    device.close()


def test_an_offline_user_gets_one_notification_for_three_messages(chat, broker_factory, webhook, unique):
    hook = webhook()
    broker = broker_factory(*hook.args())
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    registered_offline(chat, broker, bob, f"tok-{unique}")
    sender = chat(alice, target=broker)
    conversation = sender.create("DIRECT", [bob])["conversationId"]
    ids = [sender.send_message(f"m{i}", conversation=conversation) for i in range(3)]

    n = hook.notification()
    assert n["user"] == bob
    assert n["data"] == {"conversationId": conversation, "messageId": ids[-1], "count": "3", "senderId": alice}
    assert n["title"] == alice
    assert n["body"] == f"3 new messages from {alice}"
    assert "m2" not in json.dumps(n), "content only with --push-preview full"
    assert n["devices"] == [{"platform": "fcm", "token": f"tok-{unique}"}]
    assert n["collapseId"] == conversation
    hook.none()
    assert hook.bad_signatures == 0


def test_group_notifications_name_the_group_and_full_preview_shows_content(chat, broker_factory, webhook, unique):
    hook = webhook()
    broker = broker_factory(*hook.args("--push-preview", "full"))
    alice, bob, carol = f"alice-{unique}", f"bob-{unique}", f"carol-{unique}"
    registered_offline(chat, broker, bob, f"tok-{unique}")
    sender = chat(alice, target=broker)
    group = sender.create("GROUP", [bob, carol], name="Team")["conversationId"]
    sender.send_message("first", conversation=group)
    sender.send_message("lunch at noon?", conversation=group)
    # carol has no device: her window closes without a notification (the webhook still
    # hears it: integrators deliver through their own stack).
    got = {n["user"]: n for n in (hook.notification(), hook.notification())}
    assert got[bob]["title"] == "Team"
    assert got[bob]["body"] == f"{alice}: lunch at noon? (+1 more)"
    assert got[bob]["data"]["count"] == "2"
    assert got[carol]["devices"] == []
    hook.none()


def test_an_online_user_gets_none(chat, broker_factory, webhook, unique):
    hook = webhook()
    broker = broker_factory(*hook.args())
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    receiver = chat(bob, target=broker)
    receiver.call("push.register", {"platform": "fcm", "token": f"tok-{unique}"})
    sender = chat(alice, target=broker)
    conversation = sender.create("DIRECT", [bob])["conversationId"]
    sender.send_message("hi", conversation=conversation)
    receiver.event("messages")
    hook.none()


def test_a_user_who_reads_within_the_window_gets_none(chat, broker_factory, webhook, unique):
    hook = webhook()
    # A longer window: bob comes online, reads and leaves again inside it, so at fire time he
    # is offline and only the store's READ state cancels the notification.
    broker = broker_factory(*hook.args(coalesce="3s"))
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    registered_offline(chat, broker, bob, f"tok-{unique}")
    sender = chat(alice, target=broker)
    conversation = sender.create("DIRECT", [bob])["conversationId"]
    ids = [sender.send_message(f"m{i}", conversation=conversation) for i in range(2)]
    reader = chat(bob, target=broker)
    reader.call("chat.read", {"conversationId": conversation, "messageId": ids[-1]})
    reader.close()
    hook.none(within=3.0 + 2.0)


def test_a_notification_answered_503_with_retry_after_is_retried(chat, broker_factory, webhook, unique):
    hook = webhook(answers=[(503, {"Retry-After": "1"})])
    broker = broker_factory(*hook.args())
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    registered_offline(chat, broker, bob, f"tok-{unique}")
    sender = chat(alice, target=broker)
    sender.send_message("are you there?", recipient=bob)
    n = hook.notification(timeout=COALESCE_S + ARRIVAL_S + 1)
    assert n["data"]["count"] == "1"
    assert len(hook.requests) == 2
    # Retry-After said one second: the retry did not come sooner.
    assert hook.requests[1] - hook.requests[0] >= 0.9
    hook.none()


def test_registration_refusals_are_chat_errors(chat, broker, broker_factory, webhook, unique):
    # No provider configured: nothing could ever be pushed, so registering is refused.
    plain = chat(f"ann-{unique}", target=broker)
    plain.request("push.register", {"platform": "fcm", "token": "t"})
    error = plain.event("errors")
    assert error["code"] == "INVALID_DEVICE"
    assert "receiptId" in error

    hook = webhook()
    limited = broker_factory(*hook.args("--push-device-limit", "2"))
    user = chat(f"bob-{unique}", target=limited)
    user.request("push.register", {"platform": "sms", "token": "t"})
    assert user.event("errors")["code"] == "BAD_REQUEST"
    user.request("push.register", {"platform": "fcm", "token": ""})
    assert user.event("errors")["code"] == "INVALID_DEVICE"
    for token in ("a", "b", "a"):  # the same device again is a refresh, not a third device
        user.call("push.register", {"platform": "fcm", "token": token})
    user.request("push.register", {"platform": "apns", "token": "c"})
    assert user.event("errors")["code"] == "TOO_MANY_DEVICES"
    user.call("push.unregister", {"platform": "fcm", "token": "a"})
    user.call("push.register", {"platform": "apns", "token": "c"})
    assert user.drain("errors") == []


def test_devices_registered_through_the_service_api(chat, broker_factory, webhook, unique):
    hook = webhook()
    token = f"svc-{uuid.uuid4().hex}"
    broker = broker_factory(*hook.args("--service-token", token))
    alice, bob = f"alice-{unique}", f"bob-{unique}"

    def api(method: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://{broker.host}:{broker.http_port}/api/push/devices",
            data=json.dumps(body).encode(), method=method,
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    web = {"platform": "webpush", "subscription": {
        "endpoint": "https://fcm.googleapis.com/fcm/send/x1", "keys": {"p256dh": "BP", "auth": "au"}}}
    assert api("POST", {"asUser": bob, **web}) == (200, {"registered": True, "platform": "webpush"})
    assert api("POST", {"asUser": bob, "platform": "apns", "token": "gone"})[0] == 200
    assert api("DELETE", {"asUser": bob, "platform": "apns", "token": "gone"}) == (200, {"unregistered": True})
    assert api("POST", {"platform": "apns", "token": "x"})[0] == 400  # no user named

    chat(alice, target=broker).send_message("hello", recipient=bob)
    n = hook.notification()
    assert n["user"] == bob
    assert n["devices"] == [web]


def test_a_full_dispatch_queue_sheds_the_oldest_and_counts_it(chat, broker_factory, webhook, unique):
    # An integrator taking 3 s per notification, a queue of one: eight workers are busy, the
    # queue holds one, everything else to dispatch meanwhile is shed.
    hook = webhook(delay=3.0)
    broker = broker_factory(*hook.args("--push-queue", "1"))
    sender = chat(f"alice-{unique}", target=broker)
    recipients = [f"r{i}-{unique}" for i in range(14)]
    for r in recipients:
        sender.send_message("ping", recipient=r)
    deadline = time.monotonic() + COALESCE_S + ARRIVAL_S
    shed = 0
    while time.monotonic() < deadline:
        shed = metric(broker, "stompbox_push_shed_total")
        if shed >= 5:
            break
        time.sleep(0.2)
    assert shed >= 5, f"shed {shed}"
    assert metric(broker, "stompbox_push_notifications_total") == 14


def metric(broker, name: str) -> float:
    with urllib.request.urlopen(f"http://{broker.host}:{broker.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def three_nodes(tmp_path, broker_factory, webhook):
    """Three nodes on one private Redis and one store, and the webhook they push to: the
    deployment's own cluster in a cluster mode, else three nodes started here (sharing one
    SQLite file, as one host may)."""
    hook = webhook()
    args = hook.args(coalesce="2s")
    if deployment.clustered():
        yield broker_factory(*args).nodes, hook
        return
    redis = deployment.Redis()
    nodes = []
    try:
        for _ in range(3):
            nodes.append(start_node(tmp_path, "--redis-url", redis.url, *args, data_dir=tmp_path / "store"))
        yield nodes, hook
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


def test_three_nodes_send_one_notification_for_messages_stored_on_each(chat, three_nodes, unique):
    nodes, hook = three_nodes
    bob = f"bob-{unique}"
    registered_offline(chat, nodes[0], bob, f"tok-{unique}")
    senders = [chat(f"s{i}-{unique}", target=node) for i, node in enumerate(nodes)]
    conversation = senders[0].create("GROUP", [bob, senders[1].login, senders[2].login], name="Trio")["conversationId"]
    for s in senders[1:]:
        s.event("conversations")
    ids = [s.send_message(f"from node {i}", conversation=conversation) for i, s in enumerate(senders)]

    n = hook.notification(timeout=2.0 + ARRIVAL_S)
    assert n["user"] == bob
    assert n["data"]["count"] == "3"
    assert n["data"]["messageId"] == max(ids, key=int)
    assert n["body"] == "3 new messages in Trio"
    # No node sends it again, whichever opened the window.
    hook.none(within=2.0 + 2.0)
    assert hook.bad_signatures == 0
