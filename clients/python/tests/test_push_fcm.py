"""Push through a real provider protocol: the broker's FCM HTTP v1 provider against the local
`push-testbed` (it verifies the OAuth grant's RS256 JWT against the service account's public
key and the bearer token on each send). The scenarios that need a device provider: an
offline user's device gets the notification, a token FCM declares dead (404 UNREGISTERED) is
deleted, and a 503 with Retry-After is retried."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, start_node

# Each wait is a bound for a debug build on a loaded machine, not a speed assertion.
WAIT_S = 10.0


def push_testbed_binary() -> Path:
    if binary := os.environ.get("PUSH_TESTBED_BIN"):
        return Path(binary)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "push-testbed"


class PushTestbed:
    """A `push-testbed` process and its control API."""

    def __init__(self, directory: Path):
        binary = push_testbed_binary()
        if not binary.exists():
            pytest.fail(f"{binary} not found; run `cargo build -p push-testbed` or set PUSH_TESTBED_BIN")
        info = directory / "testbed.json"
        self.log = open(directory / "testbed.log", "wb")
        self.process = subprocess.Popen(
            [str(binary), "--dir", str(directory), "--info", str(info)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log,
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.process.stdout] + [lines.put(b"")],
                         daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            line = b""
        if not line.startswith(b"push-testbed ready"):
            self.stop()
            pytest.fail(f"push-testbed did not start: {(directory / 'testbed.log').read_text()[-2000:]}")
        self.info = json.loads(info.read_text())

    def control(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.info["control"] + path, data=data,
                                         method="GET" if body is None else "POST",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
        return json.loads(text) if text else None

    def wait_for(self, what, path: str, timeout: float = WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            got = self.control(path)
            if what(got):
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: condition not met within {timeout}s; last: {got!r}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture
def fcm(tmp_path):
    """A testbed, and a broker on the embedded store pushing to its FCM (a 1 s window)."""
    (tmp_path / "testbed").mkdir()
    testbed = PushTestbed(tmp_path / "testbed")
    broker = start_node(tmp_path, *testbed.info["broker_flags"], "--push-coalesce", "1s",
                        data_dir=tmp_path / "store")
    yield testbed, broker
    broker.stop()
    testbed.stop()


def offline_with_device(chat, broker, login: str, token: str) -> None:
    device = chat(login, target=broker)
    device.call("push.register", {"platform": "fcm", "token": token})
    assert device.drain("errors") == []
    device.close()


def fcm_sends(attempts, token):
    return [a for a in attempts if a["platform"] == "fcm" and a["device"] == token]


def test_an_offline_users_fcm_device_gets_the_notification(chat, fcm, unique):
    testbed, broker = fcm
    alice, bob, token = f"alice-{unique}", f"bob-{unique}", f"fcm-{unique}"
    offline_with_device(chat, broker, bob, token)
    sender = chat(alice, target=broker)
    ids = [sender.send_message(f"m{i}", recipient=bob) for i in range(3)]

    received = testbed.wait_for(lambda r: len(r) >= 1, "/_testbed/received?platform=fcm")
    assert len(received) == 1, received
    message = received[0]["payload"]
    assert message["token"] == token
    assert message["data"] == {"conversationId": message["data"]["conversationId"], "messageId": ids[-1],
                               "count": "3", "senderId": alice}
    assert message["notification"] == {"title": alice, "body": f"3 new messages from {alice}"}


def test_a_token_fcm_declares_unregistered_is_deleted(chat, fcm, unique):
    testbed, broker = fcm
    alice, bob, token = f"alice-{unique}", f"bob-{unique}", f"dead-{unique}"
    offline_with_device(chat, broker, bob, token)
    testbed.control("/_testbed/script", {"dead": [token]})
    sender = chat(alice, target=broker)
    sender.send_message("first", recipient=bob)
    testbed.wait_for(lambda a: fcm_sends(a, token), "/_testbed/attempts")
    # Deleted: the next window finds no device, and FCM hears nothing more for that token.
    deadline = time.monotonic() + WAIT_S
    while metric(broker, "stompbox_push_dead_devices_total") < 1:
        assert time.monotonic() < deadline, "the dead device was not deleted"
        time.sleep(0.2)
    sender.send_message("second", recipient=bob)
    deadline = time.monotonic() + WAIT_S
    while metric(broker, 'stompbox_push_cancelled_total{reason="no_device"}') < 1:
        assert time.monotonic() < deadline, "the second window still found a device"
        time.sleep(0.2)
    assert len(fcm_sends(testbed.control("/_testbed/attempts"), token)) == 1
    assert testbed.control("/_testbed/received?platform=fcm") == []


def test_an_fcm_503_with_retry_after_is_retried(chat, fcm, unique):
    testbed, broker = fcm
    alice, bob, token = f"alice-{unique}", f"bob-{unique}", f"busy-{unique}"
    offline_with_device(chat, broker, bob, token)
    testbed.control("/_testbed/script", {"fail": [{"platform": "fcm", "status": 503, "retry_after": "2", "times": 1}]})
    chat(alice, target=broker).send_message("hello", recipient=bob)

    received = testbed.wait_for(lambda r: len(r) >= 1, "/_testbed/received?platform=fcm", timeout=WAIT_S + 2)
    assert received[0]["payload"]["token"] == token
    attempts = fcm_sends(testbed.control("/_testbed/attempts"), token)
    assert [a["status"] for a in attempts] == [503, 200], attempts


def metric(broker, name: str) -> float:
    with urllib.request.urlopen(f"http://{broker.host}:{broker.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return 0.0
