"""A Redis primary behind Sentinel killed mid-chat (issue 16), in `cluster` mode only; the kill
test also over TLS (`rediss+sentinel://` + `--redis-ca` on `services.sh up redis-sentinel-tls`:
every data node and sentinel TLS only, so the nodes reach both the sentinels and the primary
they name over TLS, before and after the failover).

Three nodes on `redis+sentinel://` (the primary + replica + 3 sentinels of
`scripts/services.sh up redis-sentinel`, down-after-milliseconds 1000) and PostgreSQL. A sender
on one node writes to a recipient on another, one message at a time, each acknowledged by its
RECEIPT (stored). Mid-run the primary is SIGKILLed by its PID; the sentinels promote the
replica. Asserted:
- a failover happened: the sentinels name the other data node, and it reports role master;
- live delivery resumes: a message acknowledged after the kill reaches the recipient live
  (bounded generously, 30 s: the bound is for a hung test, not a speed claim);
- no acknowledged message is lost: each reached the recipient live or by its sync afterwards;
  after resumption every message arrives live again;
- the nodes re-resolved their primary (`stompbox_cluster_primary_reconnects_total` > 0);
- the killed primary started again (`services.sh up redis-sentinel`) comes back as a replica of
  the new one, and chat goes on: 10 more messages all arrive live.

Without the re-resolve (a node holding the address it started with, as a plain `redis://` to
the primary would), every command after the kill fails until that process comes back, and then
it comes back as a replica: writes answer READONLY and the node's subscriber listens on a
server nobody publishes to, so cross-node delivery never resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import deployment
import streamed
from failover import assert_none_lost, chat_until_live, send_all_live, service_or_skip, three_nodes_chatting

pytestmark = pytest.mark.skipif(
    deployment.mode() != "cluster", reason="cluster mode only: kills the Redis primary behind Sentinel"
)

# Generous: a failover takes down-after-milliseconds (1 s) plus an election here; the machine
# is shared with builds.
RESUME_WITHIN_S = 30.0
BEFORE, AFTER = 10, 10
NAME = "stompbox"


def cli(port: int, *args: str, tls: tuple[str, ...] = ()) -> list[str]:
    """redis-cli on `port`; `tls`: its TLS flags (`--tls --cacert CA`), for the TLS variant."""
    done = subprocess.run(["redis-cli", *tls, "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    return done.stdout.split("\n") if done.returncode == 0 else []


class SharedSentinel:
    """The primary, replica and sentinels of `scripts/services.sh up redis-sentinel`, or of
    `up redis-sentinel-tls` when `tls`."""

    def __init__(self, tls: bool = False):
        self.service = "redis-sentinel-tls" if tls else "redis-sentinel"
        self.restore()
        found = streamed.services()
        key = "STOMPBOX_REDIS_SENTINEL_TLS" if tls else "STOMPBOX_REDIS_SENTINEL"
        if f"{key}_URL" not in found:
            raise RuntimeError(f"no Redis Sentinel: run scripts/services.sh up {self.service}")
        self.url = found[f"{key}_URL"]
        self.dir = Path(found[f"{key}_DIR"])
        # The nodes' flags and redis-cli's for the TLS variant: the test PKI's CA.
        ca = os.path.join(found.get("STOMPBOX_TEST_CERTS", ""), "ca.pem")
        self.node_args = ("--redis-ca", ca) if tls else ()
        self.tls = ("--tls", "--cacert", ca) if tls else ()
        self.sentinels = [int(s.rsplit(":", 1)[1]) for s in self.url.split("://")[1].split("/")[0].split(",")]
        # An earlier user's leases, presence and streams would linger.
        self.cli(self.primary(), "FLUSHALL")

    def cli(self, port: int, *args: str) -> list[str]:
        return cli(port, *args, tls=self.tls)

    def primary(self) -> int:
        """The primary's port, as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            reply = self.cli(sentinel, "SENTINEL", "get-master-addr-by-name", NAME)
            if len(reply) > 1 and reply[1].isdigit():
                return int(reply[1])
        raise RuntimeError("no sentinel names a primary")

    def role(self, port: int) -> str:
        reply = self.cli(port, "ROLE")
        return reply[0] if reply else "unreachable"

    def subscribers(self, port: int) -> int:
        """The nodes' subscriber connections on the server at `port` (subscribed-mode clients
        but the sentinels' own, named `sentinel-<id>-pubsub`)."""
        return sum(
            1 for line in self.cli(port, "CLIENT", "LIST", "TYPE", "pubsub")
            if line.startswith("id=") and " name=sentinel-" not in line
        )

    def pid_of(self, port: int) -> int:
        for node in ("d1", "d2"):
            if (self.dir / node / "port").read_text().strip() == str(port):
                return int((self.dir / node / "pid").read_text().split()[0])
        raise RuntimeError(f"no redis-sentinel data node on port {port} under {self.dir}")

    def restore(self) -> None:
        """Starts what is not running (a killed primary comes back as a replica) and waits until
        the sentinels see a primary with its replica in sync."""
        subprocess.run([str(streamed.REPO / "scripts" / "services.sh"), "up", self.service], check=True,
                       capture_output=True, timeout=120)


def primary_reconnects(node) -> float:
    with urllib.request.urlopen(f"http://{node.host}:{node.http_port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("stompbox_cluster_primary_reconnects_total "):
                return float(line.split()[1])
    return 0.0


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_the_primary_killed_mid_chat_fails_over_and_loses_no_acknowledged_message(tmp_path, chat, unique, tls):
    redis = service_or_skip(lambda: SharedSentinel(tls))
    try:
        with three_nodes_chatting(tmp_path, chat, unique, redis.url, BEFORE, extra_args=redis.node_args) as talk:
            killed_port = redis.primary()
            os.kill(redis.pid_of(killed_port), signal.SIGKILL)
            killed_at = time.monotonic()

            # Keep chatting through the failover.
            after_kill, took = chat_until_live(talk, killed_at, RESUME_WITHIN_S)
            assert took is not None, f"no message sent after the kill reached the recipient live within {RESUME_WITHIN_S}s"
            promoted = redis.primary()
            assert promoted != killed_port, "the sentinels still name the killed primary"
            assert redis.role(promoted) == "master", "the promoted replica is not a primary"

            # Past the failover every message arrives live again.
            send_all_live(talk, "after", AFTER)
            assert sum(primary_reconnects(node) for node in talk.nodes) > 0, "no node re-resolved its primary"

            # The old primary comes back, as a replica of the new one; nothing breaks.
            redis.restore()
            assert redis.primary() == promoted, "the restarted old primary took the primary role back"
            assert redis.role(killed_port) == "slave", f"the old primary came back as {redis.role(killed_port)}"
            send_all_live(talk, "rejoined", AFTER)

            # Nothing acknowledged is lost: what did not arrive live is in the recipient's sync.
            assert_none_lost(talk)
            print(
                f"sentinel failover: live delivery resumed {took:.1f}s after the kill; {len(after_kill)} acknowledged "
                f"during it, {sum(1 for m in after_kill if m not in talk.live)} of them recovered by sync only"
            )
    finally:
        redis.restore()


def test_a_manual_failover_moves_every_node_to_the_new_primary(tmp_path, chat, unique):
    """`SENTINEL FAILOVER`: the primary is demoted while it still runs (as after a healed
    partition, or a planned switch), so no connection dies by itself; the nodes must follow the
    sentinels to the new primary. After the switch every message arrives live again, and
    nothing acknowledged during it is lost."""
    redis = service_or_skip(SharedSentinel)
    try:
        with three_nodes_chatting(tmp_path, chat, unique, redis.url, BEFORE) as talk:
            old = redis.primary()
            assert redis.cli(redis.sentinels[0], "SENTINEL", "FAILOVER", NAME)[0] == "OK"
            started = time.monotonic()
            # Chat through the switch until the sentinels name the new primary.
            during = 0
            while time.monotonic() - started < RESUME_WITHIN_S and redis.primary() == old:
                try:
                    talk.acked.append(talk.sender.send_message(f"switch {during}", conversation=talk.direct))
                except AssertionError:
                    pass  # no RECEIPT in time: not acknowledged, so not owed
                during += 1
                time.sleep(0.1)
            new = redis.primary()
            assert new != old, "the sentinels never named a new primary"

            # The old primary stays a primary for a while (until the sentinels convert it, ~10 s
            # here), so nothing fails on the nodes' connections to it: they follow because the
            # subscriber asks the sentinels every 5 s, and the command connection follows what
            # they said. Once the three subscribers are on the new primary, and while the old
            # one still accepts writes, messages must arrive live: publishes still going to the
            # old primary would reach no subscriber.
            while time.monotonic() - started < RESUME_WITHIN_S and redis.subscribers(new) < 3:
                time.sleep(0.1)
            split_checked = redis.role(old) == "master"
            if split_checked:
                send_all_live(talk, "split", 5)
            while time.monotonic() - started < RESUME_WITHIN_S and redis.role(old) != "slave":
                time.sleep(0.2)
            assert redis.role(old) == "slave", "the old primary was not turned into a replica"
            switched = time.monotonic() - started

            # The nodes may need a moment to notice (a dropped connection, or the subscriber's
            # check of the sentinels every 5 s): chat until a message arrives live again.
            _, took = chat_until_live(talk, time.monotonic(), RESUME_WITHIN_S)
            assert took is not None, "no message reached the recipient live after the manual failover"
            send_all_live(talk, "after", AFTER)
            assert_none_lost(talk)
            print(
                f"manual failover: old primary a replica after {switched:.1f}s; live again {took:.1f}s later; "
                f"live while the old primary still took writes: {'checked' if split_checked else 'not reached (converted first)'}"
            )
    finally:
        redis.restore()
