"""Fixtures for the stomp.py suite: a real `stompbox` process per session (or per test, when a
test needs its own flags) and a listener that turns stomp.py callbacks into bounded waits.

The broker binary is `$STOMPBOX_BIN`, else `<repo>/target/debug/stompbox` (or under
`$CARGO_TARGET_DIR`); `scripts/test.sh` builds it and sets `STOMPBOX_BIN`.

`STOMPBOX_TEST_MODE` (deployment.py) chooses the deployment every broker started here has: one
node on the embedded store (default), on PostgreSQL, on Kafka + a sink, or a 3-node cluster
standing where a broker would (`connect` spreads each login's sessions over its nodes).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import stomp

import deployment
import streamed

REPO = Path(__file__).resolve().parents[2]

# Generous for a debug build on a loaded 2-core machine; a broker binds in milliseconds.
READY_TIMEOUT_S = 30.0
# SIGTERM starts a graceful shutdown; past this we SIGKILL so a stuck broker cannot hang the suite.
STOP_TIMEOUT_S = 10.0
# Every wait for a frame is bounded by this unless a test says otherwise.
WAIT_S = 5.0

READY_RE = re.compile(
    r"^stompbox ready stomp=(?P<stomp>\S+):(?P<sport>\d+) http=(?P<http>\S+):(?P<hport>\d+)"
    # The TLS listeners, when started with --stomp-tls-listen / --https-listen.
    r"(?: stomp_tls=\S+:(?P<tport>\d+))?(?: https=\S+:(?P<hsport>\d+))?$"
)


broker_binary = streamed.broker_binary


@dataclass
class Broker:
    """A running stompbox, its addresses, and where its stderr log goes."""

    process: subprocess.Popen
    host: str
    port: int
    http_port: int
    log_path: Path
    data_dir: Path | None = None
    tls_port: int | None = None
    https_port: int | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def node_for(self, login: str) -> "Broker":
        """Where `login`'s next session connects: here (a `deployment.Cluster` spreads them)."""
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or `kill -9` would: no graceful shutdown, no final flush."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


def start_broker(log_dir: Path, *extra_args: str, data_dir: Path | None = None) -> Broker | deployment.Cluster:
    """A broker in the deployment mode of the run (`deployment.py`): one node, or a cluster of
    three standing where a broker would. `data_dir` is the store's identity: a broker started
    again on it (after a crash) finds the same messages, whatever the store."""
    # Never the repo's cwd, never shared between brokers -- unless a test restarts a broker on
    # the previous one's store (`data_dir=`), as after a crash.
    data_dir = data_dir or log_dir / f"stompbox-{uuid.uuid4().hex[:8]}-data"
    if (mode := deployment.storage()) and "--postgres-url" not in extra_args:
        # PostgreSQL (and Kafka + a sink) instead of the embedded store, per store identity.
        if data_dir not in STORAGES:
            STORAGES[data_dir] = streamed.Storage.create(log_dir, with_kafka=mode == "streamed")
        extra_args = (*STORAGES[data_dir].broker_args(broker_binary()), *extra_args)
    if deployment.clustered():
        return deployment.start_cluster(start_node, log_dir, extra_args, data_dir)
    return start_node(log_dir, *extra_args, data_dir=data_dir)


def start_node(log_dir: Path, *extra_args: str, data_dir: Path, env_extra: dict[str, str] | None = None) -> Broker:
    """One `stompbox` process with exactly these flags, once it printed its ready line.
    `env_extra`: variables added to its environment (a skewed clock's LD_PRELOAD)."""
    binary = broker_binary()
    if not binary.exists():
        pytest.fail(f"broker binary {binary} not found; run `cargo build -p stompbox` or set STOMPBOX_BIN")
    name = f"stompbox-{uuid.uuid4().hex[:8]}"
    log_path = log_dir / f"{name}.log"
    # A developer's STOMPBOX_* settings (config file, heartbeat, auth) must not leak into tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOMPBOX_")}
    # Stop at once: no load balancer polls a test broker's readiness (a flag would override).
    env["STOMPBOX_DRAIN_DELAY"] = "0"
    env["STOMPBOX_DRAIN_PERIOD"] = "0"
    env.update(env_extra or {})
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [
            str(binary),
            "--stomp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            *extra_args,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    log.close()

    # Read the ready line on a thread so a broker that never prints cannot block us forever.
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keeps draining so later stdout writes never block the broker
            lines.put(line)
        lines.put(b"")

    threading.Thread(target=pump, name="stompbox-stdout", daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01))
        except queue.Empty:
            line = None
        if line is None or remaining <= 0:
            process.kill()
            process.wait()
            pytest.fail(f"broker printed no ready line within {READY_TIMEOUT_S}s; log {log_path}")
        if line == b"":
            process.wait()
            tail = log_path.read_text(errors="replace")[-4000:]
            pytest.fail(f"broker exited with {process.returncode} before ready:\n{tail}")
        match = READY_RE.match(line.decode(errors="replace").strip())
        if match:
            tls_port, https_port = (int(p) if p else None for p in (match["tport"], match["hsport"]))
            return Broker(
                process, match["stomp"], int(match["sport"]), int(match["hport"]), log_path, data_dir, tls_port, https_port
            )


# data_dir -> its streamed storage (STOMPBOX_TEST_STORAGE=streamed); sinks stop at session end.
STORAGES: dict[Path, streamed.Storage] = {}


def start_nodes_on_redis(tmp_path: Path, redis_url: str, count: int = 3) -> list[Broker]:
    """`count` nodes on the Redis at `redis_url` (a Redis Cluster in the rcluster tests) and a
    fresh PostgreSQL database, each with its own data directory under `tmp_path`; the caller
    stops them."""
    storage = streamed.Storage.create(tmp_path, with_kafka=False)
    args = ("--redis-url", redis_url, *storage.broker_args())
    nodes: list[Broker] = []
    try:
        for i in range(count):
            nodes.append(start_node(tmp_path, *args, data_dir=tmp_path / f"node{i}"))
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


@pytest.fixture(scope="session", autouse=True)
def stop_sinks():
    yield
    for storage in STORAGES.values():
        if storage.sink is not None:
            storage.sink.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Broker:
    """One broker with default flags, shared by every test that needs nothing special.
    Tests isolate themselves with unique destination names (`unique`)."""
    b = start_broker(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path_factory):
    """Starts a fresh broker with extra flags; stopped at the end of the test."""
    started: list[Broker] = []

    def make(*extra_args: str, data_dir: Path | None = None) -> Broker:
        b = start_broker(tmp_path_factory.mktemp("broker"), *extra_args, data_dir=data_dir)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def unique() -> str:
    """A destination-safe suffix so tests sharing a broker never see each other's messages."""
    return uuid.uuid4().hex[:12]


@dataclass(eq=False, repr=False)
class Collector(stomp.ConnectionListener):
    """Records every callback; each wait is bounded and fails the test instead of hanging."""

    connected_frame: stomp.utils.Frame | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    messages: queue.Queue = field(default_factory=queue.Queue)
    errors: queue.Queue = field(default_factory=queue.Queue)
    receipts: dict[str, threading.Event] = field(default_factory=dict)
    heartbeats: int = 0
    heartbeat_timeouts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # stomp.py callbacks (run on its receiver thread)
    def on_connected(self, frame):
        self.connected_frame = frame
        self.connected.set()

    def on_disconnected(self):
        self.disconnected.set()

    def on_message(self, frame):
        self.messages.put(frame)

    def on_error(self, frame):
        self.errors.put(frame)

    def on_receipt(self, frame):
        self._receipt_event(frame.headers["receipt-id"]).set()

    def on_heartbeat(self):
        self.heartbeats += 1

    def on_heartbeat_timeout(self):
        self.heartbeat_timeouts += 1

    # test-side waits
    def _receipt_event(self, receipt_id: str) -> threading.Event:
        with self._lock:
            return self.receipts.setdefault(receipt_id, threading.Event())

    def wait_receipt(self, receipt_id: str, timeout: float = WAIT_S) -> None:
        assert self._receipt_event(receipt_id).wait(timeout), f"no RECEIPT {receipt_id!r} within {timeout}s"

    def message(self, timeout: float = WAIT_S):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no MESSAGE within {timeout}s") from None

    def no_message(self, within: float = 0.5) -> None:
        try:
            frame = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected MESSAGE {frame.headers!r} body={frame.body!r}")

    def error(self, timeout: float = WAIT_S):
        try:
            return self.errors.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no ERROR within {timeout}s") from None


class Client:
    """A stomp.py connection plus its Collector, with receipts made synchronous."""

    def __init__(self, conn, listener: Collector):
        self.conn = conn
        self.listener = listener

    def sync(self, action, *args, **kwargs) -> None:
        """Calls a stomp.py frame method with a fresh receipt and waits for that receipt, so the
        frame has taken effect at the broker before the test goes on."""
        receipt = f"r-{uuid.uuid4().hex[:8]}"
        action(*args, receipt=receipt, **kwargs)
        self.listener.wait_receipt(receipt)

    def subscribe(self, destination: str, sub_id: str, ack: str = "auto", **headers) -> None:
        self.sync(self.conn.subscribe, destination, sub_id, ack=ack, **headers)

    def send(self, destination: str, body, **headers) -> None:
        self.sync(self.conn.send, destination, body, **headers)

    def drop(self) -> None:
        """Closes the socket without DISCONNECT, as a crashed client would."""
        self.conn.transport.disconnect_socket()
        assert self.listener.disconnected.wait(WAIT_S), "socket did not close"

    def close(self) -> None:
        # stomp.py's disconnect() without an explicit receipt does not block on the RECEIPT; we
        # wait a bounded time for it, then close the socket regardless.
        if self.conn.is_connected():
            try:
                self.conn.disconnect()
            except Exception:  # the broker may already have closed us (ERROR tests)
                pass
            self.listener.disconnected.wait(1.0)
        self.conn.transport.disconnect_socket()


@pytest.fixture
def connect(broker):
    """`connect(login, ...)` opens a STOMP connection to the shared broker (or to `broker=`) and
    waits for CONNECTED; every connection is closed when the test ends."""
    opened: list[Client] = []

    def make(
        login: str = "guest",
        *,
        target: Broker | None = None,
        version: str = "1.2",
        heartbeats: tuple[int, int] = (0, 0),
        heart_beat_receive_scale: float = 1.5,
        auto_decode: bool = True,
        expect_connected: bool = True,
        listener: Collector | None = None,
    ) -> Client:
        target = (target or broker).node_for(login)
        cls = {"1.2": stomp.Connection12, "1.1": stomp.Connection11}[version]
        conn = cls(
            [target.address],
            heartbeats=heartbeats,
            heart_beat_receive_scale=heart_beat_receive_scale,
            auto_decode=auto_decode,
            reconnect_attempts_max=1,
        )
        listener = listener or Collector()
        conn.set_listener("collector", listener)
        conn.connect(login, "unused", wait=False)
        client = Client(conn, listener)
        opened.append(client)
        if expect_connected:
            assert listener.connected.wait(WAIT_S), f"no CONNECTED within {WAIT_S}s; broker log:\n{target.log_tail()}"
        return client

    yield make
    for client in opened:
        client.close()


# --- The built-in chat application (`/app/...`, replies and events on `/user/queue/...`) ---

# Every queue the chat application answers or notifies on.
CHAT_QUEUES = ("messages", "receipts", "errors", "typing", "presence", "sync", "history", "conversations")


@dataclass(eq=False, repr=False)
class ChatCollector(Collector):
    """A Collector that sorts chat frames by the queue their subscription (`chat-<queue>`) names
    and keeps every RECEIPT frame, whose `message-id` header carries a sent message's id."""

    inboxes: dict = field(default_factory=lambda: {q: queue.Queue() for q in CHAT_QUEUES})
    receipt_frames: dict = field(default_factory=dict)

    def on_message(self, frame):
        name = frame.headers.get("subscription", "").removeprefix("chat-")
        if name in self.inboxes:
            self.inboxes[name].put(frame)
        else:
            super().on_message(frame)

    def on_receipt(self, frame):
        with self._lock:
            self.receipt_frames[frame.headers["receipt-id"]] = frame
        super().on_receipt(frame)


class ChatClient:
    """One chat session: a stomp.py connection subscribed to the chat queues, with JSON requests
    to `/app/<action>` and bounded waits per queue."""

    def __init__(self, client: Client, login: str):
        self.client = client
        self.conn = client.conn
        self.listener: ChatCollector = client.listener
        self.login = login

    def subscribe_all(self, queues=CHAT_QUEUES, messages_ack: str = "auto") -> "ChatClient":
        for q in queues:
            self.client.subscribe(f"/user/queue/{q}", f"chat-{q}", ack=messages_ack if q == "messages" else "auto")
        return self

    def request(self, action: str, body, *, receipt: bool = True) -> str | None:
        """SENDs `body` (a dict is JSON-encoded, a str goes as is) to `/app/<action>`; returns the
        receipt id it asked for (without waiting)."""
        payload = body if isinstance(body, str) else json.dumps(body)
        headers = {"content-type": "application/json"}
        receipt_id = f"r-{uuid.uuid4().hex[:10]}" if receipt else None
        if receipt_id:
            headers["receipt"] = receipt_id
        self.conn.send(f"/app/{action}", payload, headers=headers)
        return receipt_id

    def call(self, action: str, body, timeout: float = WAIT_S):
        """A request whose RECEIPT must come; returns the RECEIPT frame."""
        receipt_id = self.request(action, body)
        self.listener.wait_receipt(receipt_id, timeout)
        return self.listener.receipt_frames[receipt_id]

    def send_message(self, content: str, *, conversation: str | None = None, recipient: str | None = None, **extra) -> str:
        """`/app/chat.send`, waiting for the RECEIPT (the message is stored); returns its id."""
        body = {"content": content, **extra}
        if conversation is not None:
            body["conversationId"] = conversation
        if recipient is not None:
            body["recipientId"] = recipient
        frame = self.call("chat.send", body)
        assert "message-id" in frame.headers, f"RECEIPT of chat.send lacks message-id: {frame.headers!r}"
        return frame.headers["message-id"]

    def create(self, kind: str, members: list[str], name: str | None = None) -> dict:
        """`/app/conversation.create`; returns the conversation from this session's `created`
        event (applied before the RECEIPT, so it is already here)."""
        body = {"type": kind, "members": members}
        if name is not None:
            body["name"] = name
        self.call("conversation.create", body)
        event = self.event("conversations")
        assert event["event"] == "created", event
        return event["conversation"]

    def frame(self, name: str, timeout: float = WAIT_S):
        try:
            return self.listener.inboxes[name].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.login}: nothing on /user/queue/{name} within {timeout}s") from None

    def event(self, name: str, timeout: float = WAIT_S) -> dict:
        return json.loads(self.frame(name, timeout).body)

    def events(self, name: str, count: int, timeout: float = WAIT_S) -> list[dict]:
        deadline = time.monotonic() + timeout
        return [self.event(name, max(deadline - time.monotonic(), 0.01)) for _ in range(count)]

    def none(self, name: str, within: float = 0.5) -> None:
        try:
            frame = self.listener.inboxes[name].get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"{self.login}: unexpected on /user/queue/{name}: {frame.body!r}")

    def drain(self, name: str) -> list[dict]:
        out = []
        while True:
            try:
                out.append(json.loads(self.listener.inboxes[name].get_nowait().body))
            except queue.Empty:
                return out

    def got_receipt(self, receipt_id: str) -> bool:
        return self.listener._receipt_event(receipt_id).is_set()

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def chat(connect):
    """`chat(login, target=..., queues=..., messages_ack=...)`: a connected session subscribed
    to the chat queues (`queues=()` for none); closed when the test ends."""

    def make(login: str, *, target: Broker | None = None, queues=CHAT_QUEUES, messages_ack: str = "auto", **kwargs) -> ChatClient:
        client = connect(login, target=target, listener=ChatCollector(), **kwargs)
        return ChatClient(client, login).subscribe_all(queues, messages_ack)

    return make
