"""The broker's other stores, for the suites: PostgreSQL, and Kafka + PostgreSQL with a sink.

`STOMPBOX_TEST_STORAGE=streamed` makes every broker the suites start run with
`--postgres-url`/`--kafka-brokers` instead of the embedded store (`=postgres`: with
`--postgres-url` only, chat straight on PostgreSQL). Each store identity (a
broker's `data_dir`, so a broker restarted on the same `data_dir` finds its messages again)
gets its own PostgreSQL database, its own Kafka topic, and its own `stompbox-sink` process
moving that topic into that database. The services are the ones `scripts/services.sh up`
runs (`.run/services.env`); the outage tests start private ones (`Tansu`).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("STOMPBOX_PG_BIN", "/usr/lib/postgresql/15/bin"))
READY_S = 30.0
# Few partitions: each sync barrier produces one marker per partition.
PARTITIONS = 2


def mode() -> str | None:
    """`streamed`, `postgres`, or None (the embedded store): the store of the run's deployment
    mode (`deployment.py`; `STOMPBOX_TEST_STORAGE` names a single-node one)."""
    chosen = os.environ.get("STOMPBOX_TEST_STORAGE") or None
    if chosen not in (None, "streamed", "postgres"):
        raise RuntimeError(f"STOMPBOX_TEST_STORAGE={chosen!r}: use streamed or postgres")
    # Imported here: deployment builds on this module (its Redis is a `Child`).
    import deployment

    return deployment.storage()


def services() -> dict[str, str]:
    """STOMPBOX_POSTGRES_URL and STOMPBOX_KAFKA_BROKERS from the environment or the env file."""
    found = {k: v for k, v in os.environ.items() if k in ("STOMPBOX_POSTGRES_URL", "STOMPBOX_KAFKA_BROKERS")}
    env_file = Path(os.environ.get("STOMPBOX_SERVICES_ENV", REPO / ".run" / "services.env"))
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                found.setdefault(key.strip(), value.strip())
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` different free ports: the kernel can hand the same one to two `free_port` calls
    in a row (each socket is closed before the next asks), and two servers started on one port
    collide."""
    ports: list[int] = []
    while len(ports) < count:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


def broker_binary() -> Path:
    """`$STOMPBOX_BIN`, else `<repo>/target/debug/stompbox` (or under `$CARGO_TARGET_DIR`)."""
    if explicit := os.environ.get("STOMPBOX_BIN"):
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return (target if target.is_absolute() else REPO / target) / "debug" / "stompbox"


def sink_binary() -> Path:
    if explicit := os.environ.get("STOMPBOX_SINK_BIN"):
        return Path(explicit)
    if broker := os.environ.get("STOMPBOX_BIN"):
        return Path(broker).with_name("stompbox-sink")
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return (target if target.is_absolute() else REPO / target) / "debug" / "stompbox-sink"


@functools.cache
def knows_flag(binary: Path, flag: str) -> bool:
    done = subprocess.run([str(binary), "--help"], capture_output=True, text=True, env=clean_env(), timeout=30)
    return flag in done.stdout


def clean_env() -> dict[str, str]:
    # A developer's STOMPBOX_* settings must not leak into the processes under test.
    return {k: v for k, v in os.environ.items() if not k.startswith("STOMPBOX_")}


def psql(url: str, sql: str) -> str:
    psql_bin = PG_BIN / "psql" if (PG_BIN / "psql").exists() else Path(shutil.which("psql") or "psql")
    done = subprocess.run(
        [str(psql_bin), url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def database_url(server_url: str, database: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{database}"


class Child:
    """A service process a test starts, pauses (SIGSTOP: it holds its connections but does
    nothing — the sink lags, Kafka is unreachable), resumes, and stops by its PID."""

    process: subprocess.Popen | None = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class Sink(Child):
    """A `stompbox-sink` process moving one topic into one database."""

    def __init__(self, kafka: str, postgres_url: str, topic: str, log_path: Path):
        self.args = [
            str(sink_binary()),
            "--kafka-brokers", kafka,
            "--postgres-url", postgres_url,
            "--events-topic", topic,
            "--dead-letter-topic", f"{topic}.dlt",
            "--group-id", f"{topic}.sink",
            "--partitions", str(PARTITIONS),
        ]
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "Sink":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.args, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        log.close()
        deadline = time.monotonic() + READY_S
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"sink exited before ready; log {self.log_path}")
            if line.startswith(b"stompbox-sink ready"):
                return self
        raise RuntimeError(f"sink not ready within {READY_S}s; log {self.log_path}")



@dataclass
class Storage:
    """One store identity: a database, a topic, and the sink between them."""

    postgres_url: str
    kafka: str | None
    topic: str
    sink: Sink | None

    @classmethod
    def create(
        cls, log_dir: Path, kafka: str | None = None, start_sink: bool = True, with_kafka: bool = True
    ) -> "Storage":
        found = services()
        needed = ["STOMPBOX_POSTGRES_URL"] + (["STOMPBOX_KAFKA_BROKERS"] if with_kafka and not kafka else [])
        missing = [k for k in needed if k not in found]
        if missing:
            raise RuntimeError(f"streamed storage needs {missing}: run scripts/services.sh up")
        name = f"sbt_{uuid.uuid4().hex[:12]}"
        psql(found["STOMPBOX_POSTGRES_URL"], f"CREATE DATABASE {name}")
        url = database_url(found["STOMPBOX_POSTGRES_URL"], name)
        topic = name.replace("_", ".")
        if not with_kafka:
            return cls(url, None, topic, None)
        kafka = kafka or found["STOMPBOX_KAFKA_BROKERS"]
        sink = Sink(kafka, url, topic, log_dir / f"{name}-sink.log")
        storage = cls(url, kafka, topic, sink)
        if start_sink:
            sink.start()
        return storage

    def broker_args(self, binary: Path | None = None) -> list[str]:
        if self.kafka is None:
            return ["--postgres-url", self.postgres_url]
        args = [
            "--postgres-url", self.postgres_url,
            "--kafka-brokers", self.kafka,
            "--kafka-topic", self.topic,
            "--kafka-partitions", str(PARTITIONS),
        ]
        if knows_flag(binary or broker_binary(), "--kafka-sink-group"):
            # The group our sink consumes in, for the broker's lag warning (an older binary,
            # run to show a test failing before a fix, lacks the flag).
            args += ["--kafka-sink-group", f"{self.topic}.sink"]
        return args

    def rows(self, sql: str) -> list[list[str]]:
        out = psql(self.postgres_url, sql)
        return [line.split("|") for line in out.splitlines() if line]


class Tansu(Child):
    """A private Kafka-API broker (tansu, memory storage) a test may stop, pause and start."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.log_path = log_dir / f"tansu-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def brokers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Tansu":
        binary = os.environ.get("STOMPBOX_TANSU_BIN") or shutil.which("tansu") or str(
            Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin" / "tansu"
        )
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            env=clean_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"tansu not listening within {READY_S}s; log {self.log_path}")

