"""Push notifications through the real provider protocols (docs/push.md), end to end: the
broker against `push-testbed`, local stand-ins for FCM HTTP v1, APNs and a Web Push service
that check what the real ones check (the OAuth grant's RS256 signature and the bearer on each
send; the APNs provider token's ES256 signature, key id and team id over HTTP/2; the VAPID
signature, and the payload decrypted with the subscription's private key). An offline user
gets one notification for three messages through each; a dead token is deleted; an outage
answered 503 with Retry-After is retried."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import REPO

# Short windows keep the suite fast; the default (3 s) is only a default.
COALESCE_MS = 1000
# A bound on waiting for a notification to reach the testbed (debug build, loaded machine),
# not a speed assertion.
ARRIVAL_S = 8.0
# How long "nothing more arrives" is watched.
QUIET_S = 2.5


def push_testbed_binary() -> Path:
    """`$PUSH_TESTBED_BIN`, else `<repo>/target/debug/push-testbed` (or under `$CARGO_TARGET_DIR`)."""
    if explicit := os.environ.get("PUSH_TESTBED_BIN"):
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return (target if target.is_absolute() else REPO / target) / "debug" / "push-testbed"


class PushTestbed:
    def __init__(self, directory: Path):
        binary = push_testbed_binary()
        if not binary.exists():
            pytest.fail(f"{binary} not found; run `cargo build -p push-testbed` or set PUSH_TESTBED_BIN")
        info_path = directory / "testbed.json"
        self.log = open(directory / "push-testbed.log", "wb")
        self.process = subprocess.Popen(
            [str(binary), "--dir", str(directory), "--info", str(info_path)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not info_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(f"push-testbed did not start; see {directory / 'push-testbed.log'}")
            time.sleep(0.05)
        self.info = json.loads(info_path.read_text())

    def broker_args(self) -> tuple[str, ...]:
        return (*self.info["broker_flags"], "--push-coalesce", f"{COALESCE_MS}ms")

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.info["control"] + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def received(self, device: str) -> list[dict]:
        return [r for r in self._call("GET", "/_testbed/received") if r["device"] == device]

    def attempts(self, device: str) -> list[dict]:
        return [a for a in self._call("GET", "/_testbed/attempts") if a["device"] == device]

    def script(self, **script) -> None:
        self._call("POST", "/_testbed/script", script)

    def subscribe(self) -> dict:
        return self._call("POST", "/_testbed/webpush/subscribe", {})

    def one_notification(self, device: str) -> dict:
        """Waits for the first notification to `device`, then checks that no second follows."""
        deadline = time.monotonic() + COALESCE_MS / 1000 + ARRIVAL_S
        while not (got := self.received(device)):
            assert time.monotonic() < deadline, f"no notification reached {device}: {self.attempts(device)}"
            time.sleep(0.1)
        time.sleep(QUIET_S)
        got = self.received(device)
        assert len(got) == 1, f"expected one notification, got {got}"
        return got[0]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def testbed(tmp_path):
    bed = PushTestbed(tmp_path)
    yield bed
    bed.close()


def offline_with(chat, broker, login: str, device: dict) -> None:
    """`login` registers `device` over STOMP (RECEIPT once stored), then goes offline."""
    session = chat(login, target=broker)
    session.call("push.register", device)
    assert session.drain("errors") == []
    session.close()


def three_messages(chat, broker, sender: str, to: str) -> tuple[str, list[str]]:
    session = chat(sender, target=broker)
    conversation = session.create("DIRECT", [to])["conversationId"]
    ids = [session.send_message(f"m{i}", conversation=conversation) for i in range(3)]
    return conversation, ids


def test_fcm_one_notification_for_three_messages(chat, broker_factory, testbed, unique):
    broker = broker_factory(*testbed.broker_args())
    alice, bob, token = f"alice-{unique}", f"bob-{unique}", f"fcm-{unique}"
    offline_with(chat, broker, bob, {"platform": "fcm", "token": token})
    conversation, ids = three_messages(chat, broker, alice, bob)

    message = testbed.one_notification(token)["payload"]
    assert message["token"] == token
    assert message["notification"] == {"title": alice, "body": f"3 new messages from {alice}"}
    assert message["data"] == {"conversationId": conversation, "messageId": ids[-1], "count": "3", "senderId": alice}
    assert message["android"]["collapse_key"] == conversation


def test_apns_one_notification_for_three_messages(chat, broker_factory, testbed, unique):
    broker = broker_factory(*testbed.broker_args())
    alice, bob, token = f"alice-{unique}", f"bob-{unique}", uuid.uuid4().hex + uuid.uuid4().hex
    offline_with(chat, broker, bob, {"platform": "apns", "token": token})
    conversation, ids = three_messages(chat, broker, alice, bob)

    got = testbed.one_notification(token)
    assert got["headers"]["apns-push-type"] == "alert"
    assert got["headers"]["apns-topic"] == testbed.info["apns"]["topic"]
    assert got["payload"]["aps"]["alert"] == {"title": alice, "body": f"3 new messages from {alice}"}
    assert got["payload"]["count"] == "3"
    assert got["payload"]["messageId"] == ids[-1]
    assert got["payload"]["conversationId"] == conversation


def test_webpush_one_notification_for_three_messages(chat, broker_factory, testbed, unique):
    broker = broker_factory(*testbed.broker_args())
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    subscription = testbed.subscribe()
    offline_with(chat, broker, bob, {"platform": "webpush", "subscription": subscription})
    conversation, ids = three_messages(chat, broker, alice, bob)

    got = testbed.one_notification(subscription["endpoint"])
    # Decrypted by the testbed with the subscription's private key.
    assert got["payload"]["title"] == alice
    assert got["payload"]["body"] == f"3 new messages from {alice}"
    assert got["payload"]["data"] == {"conversationId": conversation, "messageId": ids[-1], "count": "3", "senderId": alice}
    assert got["headers"]["content-encoding"] == "aes128gcm"


def test_a_token_fcm_calls_unregistered_is_deleted(chat, broker_factory, testbed, unique):
    broker = broker_factory(*testbed.broker_args())
    alice, bob, token = f"alice-{unique}", f"bob-{unique}", f"fcm-{unique}"
    testbed.script(dead=[token])
    offline_with(chat, broker, bob, {"platform": "fcm", "token": token})
    sender = chat(alice, target=broker)
    conversation = sender.create("DIRECT", [bob])["conversationId"]
    sender.send_message("first", conversation=conversation)
    deadline = time.monotonic() + COALESCE_MS / 1000 + ARRIVAL_S
    while not testbed.attempts(token):
        assert time.monotonic() < deadline, "the broker never tried the device"
        time.sleep(0.1)
    assert [a["status"] for a in testbed.attempts(token)] == [404]
    # The registration is gone: the next window finds no device to try.
    sender.send_message("second", conversation=conversation)
    time.sleep(COALESCE_MS / 1000 + QUIET_S)
    assert [a["status"] for a in testbed.attempts(token)] == [404], "a dead token was tried again"


def test_an_apns_outage_answered_503_with_retry_after_is_retried(chat, broker_factory, testbed, unique):
    broker = broker_factory(*testbed.broker_args())
    alice, bob, token = f"alice-{unique}", f"bob-{unique}", uuid.uuid4().hex + uuid.uuid4().hex
    offline_with(chat, broker, bob, {"platform": "apns", "token": token})
    testbed.script(fail=[{"platform": "apns", "status": 503, "retry_after": "1", "times": 1}])
    three_messages(chat, broker, alice, bob)

    got = testbed.one_notification(token)
    assert got["payload"]["count"] == "3"
    assert [a["status"] for a in testbed.attempts(token)] == [503, 200]
