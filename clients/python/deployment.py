"""The deployment matrix: which shape of Stompbox the suites run against, chosen by
`STOMPBOX_TEST_MODE` (scripts/test.sh runs the chat suites once per mode, in parallel):

| mode               | nodes | store                                                          |
|--------------------|-------|----------------------------------------------------------------|
| `embedded`         | 1     | SQLite under the broker's data dir (the default)               |
| `postgres`         | 1     | PostgreSQL (`--postgres-url`)                                  |
| `streamed`         | 1     | Kafka, `stompbox-sink` as its own process, PostgreSQL          |
| `cluster`          | 3     | Redis (`--redis-url`) + PostgreSQL                             |
| `cluster-streamed` | 3     | Redis + Kafka + the sink process + PostgreSQL                  |

`STOMPBOX_TEST_STORAGE=postgres|streamed` (the older switch, still used by the node suite)
means the single-node mode of that name.

In a cluster mode every broker a test starts is a `Cluster` of three nodes that stands where
a `Broker` would: `connect` asks it `node_for(login)`, and each login's sessions go round-robin
over the nodes, starting one node further for each new login, so a user's devices are on
different nodes and so are the two ends of a conversation. PostgreSQL and Kafka are the shared
services of `scripts/services.sh` (a database and a topic per store, `streamed.Storage`);
Redis is a private `redis-server` per cluster, because Redis Pub/Sub channels ignore the
database number and the broker's channel names carry no prefix, so two clusters on one Redis
would hear each other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import streamed

MODES = ("embedded", "postgres", "streamed", "cluster", "cluster-streamed")
# Nodes of a cluster mode: the production shape the issue names.
CLUSTER_NODES = 3
# redis-server answers PING within milliseconds; the machine is shared with builds.
REDIS_READY_S = 10.0


def mode() -> str:
    chosen = os.environ.get("STOMPBOX_TEST_MODE")
    if not chosen:
        return os.environ.get("STOMPBOX_TEST_STORAGE") or "embedded"
    if chosen not in MODES:
        raise RuntimeError(f"STOMPBOX_TEST_MODE={chosen!r}: use one of {', '.join(MODES)}")
    return chosen


def storage() -> str | None:
    """The store of the mode: None (embedded), `postgres` or `streamed`."""
    return {"embedded": None, "cluster": "postgres", "cluster-streamed": "streamed"}.get(mode(), mode())


def clustered() -> bool:
    return mode().startswith("cluster")


def cluster_only(reason: str):
    """Marks a test of what only a cluster does; skipped on one node with `reason`."""
    return pytest.mark.skipif(not clustered(), reason=f"cluster only: {reason}")


def single_node_only(reason: str):
    """Marks a test that needs one node by nature; skipped in the cluster modes with `reason`."""
    return pytest.mark.skipif(clustered(), reason=f"single node by nature: {reason}")


class Redis(streamed.Child):
    """A private redis-server on a Unix socket (no TCP port to collide on), no persistence."""

    def __init__(self):
        # Short: a Unix socket path is limited to ~107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="sbx-redis-"))
        self.socket = self.dir / "redis.sock"
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--save", "", "--appendonly", "no", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + REDIS_READY_S
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("private redis-server did not start (scripts/services.sh installs it)")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def cli(self, *args: str) -> str | None:
        if not self.socket.exists():
            return None
        done = subprocess.run(["redis-cli", "-s", str(self.socket), *args], capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else None

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(eq=False)
class Cluster:
    """Three nodes on one private Redis and one store, standing where a `Broker` would."""

    nodes: list
    redis: Redis
    data_dir: Path
    _logins: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def node_for(self, login: str):
        """The node of `login`'s next session: round-robin per login, each new login starting
        one node further than the previous one."""
        with self._lock:
            sessions = self._logins.setdefault(login, len(self._logins))
            self._logins[login] = sessions + 1
        return self.nodes[sessions % len(self.nodes)]

    # A `Broker`'s attributes, for tests that talk to "the broker" (its HTTP API, a raw
    # socket): the first node.
    def __getattr__(self, name):
        if name in ("host", "port", "http_port", "address", "log_path", "tls_port", "https_port", "process"):
            return getattr(self.nodes[0], name)
        raise AttributeError(name)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(f"--- node {i} ---\n{n.log_tail(lines)}" for i, n in enumerate(self.nodes))

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()
        self.redis.stop()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.redis.stop()


def start_cluster(start_node, log_dir: Path, extra_args: tuple[str, ...], data_dir: Path) -> Cluster:
    """Starts `CLUSTER_NODES` nodes at once with `start_node(log_dir, *args, data_dir=...)`,
    each with its own data dir under `data_dir`; `extra_args` carry the store's flags."""
    redis = Redis()
    args = ("--redis-url", redis.url, *extra_args)
    with ThreadPoolExecutor(CLUSTER_NODES) as pool:
        futures = [pool.submit(start_node, log_dir, *args, data_dir=data_dir / f"node{i}") for i in range(CLUSTER_NODES)]
    started = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        for node in started:
            node.stop()
        redis.stop()
        raise failed[0]
    return Cluster(started, redis, data_dir)
