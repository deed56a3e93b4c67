"""The deployment matrix: which shape of Stompbox the suites run against, chosen by
`STOMPBOX_TEST_MODE` (scripts/test.sh runs the chat suites once per mode, in parallel):

| mode               | nodes | store                                                          |
|--------------------|-------|----------------------------------------------------------------|
| `embedded`         | 1     | SQLite under the broker's data dir (the default)               |
| `postgres`         | 1     | PostgreSQL (`--postgres-url`)                                  |
| `streamed`         | 1     | Kafka, `stompbox-sink` as its own process, PostgreSQL          |
| `cluster`          | 3     | Redis (`--redis-url`) + PostgreSQL                             |
| `cluster-streamed` | 3     | Redis + Kafka + the sink process + PostgreSQL                  |
| `rcluster`         | 3     | Redis Cluster (3 primaries, 3 replicas) + PostgreSQL           |

`STOMPBOX_TEST_STORAGE=postgres|streamed` (the older switch, still used by the node suite)
means the single-node mode of that name.

In a cluster mode every broker a test starts is a `Cluster` of three nodes that stands where
a `Broker` would: `connect` asks it `node_for(login)`, and each login's sessions go round-robin
over the nodes, starting one node further for each new login, so a user's devices are on
different nodes and so are the two ends of a conversation. PostgreSQL and Kafka are the shared
services of `scripts/services.sh` (a database and a topic per store, `streamed.Storage`);
Redis is a private `redis-server` per cluster, because Redis Pub/Sub channels ignore the
database number and the broker's channel names carry no prefix, so two clusters on one Redis
would hear each other. In `rcluster` mode it is a private Redis Cluster per cluster of nodes
(`PrivateRedisCluster`: 3 primaries and 3 replicas of Debian redis-server, on free ports), for
the same reason; the primary-kill test uses the one `scripts/services.sh up redis-cluster` runs.
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

MODES = ("embedded", "postgres", "streamed", "cluster", "cluster-streamed", "rcluster")
CLUSTER_MODES = ("cluster", "cluster-streamed", "rcluster")
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
    return {"embedded": None, "cluster": "postgres", "cluster-streamed": "streamed", "rcluster": "postgres"}.get(
        mode(), mode()
    )


def clustered() -> bool:
    return mode() in CLUSTER_MODES


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

    def cli_primaries(self, *args: str) -> list[str]:
        """`args` on every primary: the one server here."""
        return [self.cli(*args) or ""]

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """A Redis Cluster reached with redis-cli: who serves what, and commands on its nodes."""

    ports: list[int]

    @property
    def url(self) -> str:
        return "redis-cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def cli_at(self, port: int, *args: str) -> str | None:
        try:
            done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        out = done.stdout.strip()
        return out if done.returncode == 0 and not out.startswith("Could not connect") else None

    def cli(self, *args: str) -> str | None:
        """`args` on the node owning their key (`redis-cli -c` follows MOVED)."""
        for port in self.ports:
            out = self.cli_at(port, "-c", *args)
            if out is not None:
                return out
        return None

    def nodes(self) -> list[dict]:
        """`CLUSTER NODES` as a live node sees it: each node's port, flags and slot ranges."""
        for port in self.ports:
            out = self.cli_at(port, "CLUSTER", "NODES")
            if out and "myself" in out:
                found = []
                for line in out.splitlines():
                    fields = line.split()
                    address = fields[1].split("@")[0]
                    found.append({"port": int(address.rsplit(":", 1)[1]), "flags": fields[2].split(","), "slots": fields[8:]})
                return found
        return []

    def primaries(self) -> list[int]:
        return [n["port"] for n in self.nodes() if self.serving(n)]

    @staticmethod
    def serving(node: dict) -> bool:
        """A primary holding slots, not marked failing (`fail`, or `fail?` while suspected)."""
        failing = any(flag.startswith("fail") for flag in node["flags"])
        return "master" in node["flags"] and not failing and bool(node["slots"])

    def cli_primaries(self, *args: str) -> list[str]:
        return [self.cli_at(port, *args) or "" for port in self.primaries()]

    def primary_of(self, key: str) -> int:
        """The port of the live primary serving `key`'s slot."""
        slot = int(self.cli("CLUSTER", "KEYSLOT", key) or "-1")
        for node in self.nodes():
            if not self.serving(node):
                continue
            for span in node["slots"]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return node["port"]
        raise RuntimeError(f"no live primary serves slot {slot} (key {key!r})")

    def healthy(self, nodes: int) -> bool:
        """cluster_state:ok on every node, each seeing `nodes` connected nodes."""
        for port in self.ports:
            info = self.cli_at(port, "CLUSTER", "INFO") or ""
            if "cluster_state:ok" not in info:
                return False
            seen = self.cli_at(port, "CLUSTER", "NODES") or ""
            if sum(1 for line in seen.splitlines() if "fail" not in line and "connected" in line) != nodes:
                return False
        return True


class PrivateRedisCluster(RedisCluster):
    """A Redis Cluster of its own per cluster of nodes (3 primaries, 3 replicas, on free ports),
    for the same reason as `Redis`: clusters sharing one would hear each other."""

    NODES = 6

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="sbx-rcluster-"))
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        # Client ports and cluster-bus ports, all different.
        ports = streamed.free_ports(2 * self.NODES)
        self.ports, bus_ports = ports[: self.NODES], ports[self.NODES :]
        self.processes = []
        # Started nodes are stopped if a later step fails (a node's mkdir, a start, the create).
        try:
            for port, bus_port in zip(self.ports, bus_ports):
                node_dir = self.dir / str(port)
                node_dir.mkdir()
                self.processes.append(
                    subprocess.Popen(
                        [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(node_dir),
                         "--cluster-enabled", "yes", "--cluster-port", str(bus_port),
                         "--cluster-node-timeout", "2000", "--cluster-replica-validity-factor", "0",
                         "--save", "", "--appendonly", "no"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                )
            deadline = time.monotonic() + REDIS_READY_S
            while any(self.cli_at(port, "PING") != "PONG" for port in self.ports):
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    raise RuntimeError("private redis cluster nodes did not start")
                time.sleep(0.02)
            create = subprocess.run(
                ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                 "--cluster-replicas", "1", "--cluster-yes"],
                capture_output=True, text=True, timeout=60,
            )
            if create.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout}{create.stderr}")
            deadline = time.monotonic() + 30
            while not (self.healthy(self.NODES) and len(self.primaries()) == self.NODES // 2):
                if time.monotonic() > deadline:
                    raise RuntimeError("private redis cluster not ok within 30 s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def pid_of(self, port: int) -> int:
        return self.processes[self.ports.index(port)].pid

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class SharedRedisCluster(RedisCluster):
    """The Redis Cluster of `scripts/services.sh up redis-cluster`, emptied when taken (an
    earlier user's leases, presence and streams would linger). Stopping leaves it running."""

    def __init__(self):
        found = streamed.services()
        if "STOMPBOX_REDIS_CLUSTER_URL" not in found:
            raise RuntimeError("no Redis Cluster: run scripts/services.sh up redis-cluster")
        self.dir = Path(found["STOMPBOX_REDIS_CLUSTER_DIR"])
        self.ports = [int(seed.rsplit(":", 1)[1]) for seed in found["STOMPBOX_REDIS_CLUSTER_URL"].split(",")]
        for port in self.primaries():
            self.cli_at(port, "FLUSHALL")

    def pid_of(self, port: int) -> int:
        for node_dir in self.dir.glob("n*"):
            if (node_dir / "port").read_text().strip() == str(port):
                return int((node_dir / "pid").read_text().split()[0])
        raise RuntimeError(f"no redis-cluster node on port {port} under {self.dir}")

    def restore(self) -> None:
        """Starts again what was killed (it rejoins as a replica); waits for cluster_state:ok."""
        subprocess.run([str(streamed.REPO / "scripts" / "services.sh"), "up", "redis-cluster"], check=True,
                       capture_output=True, timeout=120)

    def stop(self) -> None:
        pass


def redis_for_mode():
    """A cluster's Redis: the shared Redis Cluster in `rcluster` mode, else a private server."""
    return PrivateRedisCluster() if mode() == "rcluster" else Redis()


@dataclass(eq=False)
class Cluster:
    """Three nodes on one private Redis and one store, standing where a `Broker` would."""

    nodes: list
    redis: Redis | RedisCluster
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
    redis = redis_for_mode()
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
