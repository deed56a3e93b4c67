"""Nodes on a TLS-only Redis Cluster, `rediss-cluster://` with `--redis-ca`, and on TLS-only
Redis Sentinel, `rediss+sentinel://` (issue 16: every link to a service can run over TLS), in
`cluster` mode only. The chat over TLS Sentinel, through a primary killed, is
tests/test_sentinel_failover.py's `tls` case.

The cluster is `scripts/services.sh up redis-cluster-tls`: 3 primaries that listen on TLS only
(`port 0`, `tls-port`; a plain connection is reset), the cluster bus and replication over TLS
too, the certificates of scripts/test-certs.sh. Asserted:
- two nodes on it chat cross-node: a sender on one, a recipient on the other, every direct
  message arrives live, and the nodes' sharded subscriptions are on the TLS cluster;
- a node given another CA (`other-ca.pem`, which did not sign the servers' certificates)
  refuses to start, saying the peer certificate is invalid, on the cluster (every shard is
  checked) and on Sentinel (`redis-sentinel-tls`: the sentinels are checked before any
  primary is asked for): a node that cannot verify its Redis does not run half-connected.

On the old code `rediss-cluster://` and `rediss+sentinel://` were refused at startup ("not
supported yet"), so the chat test (no node starts) and the refusals (the wrong reason) fail
there.
"""

from __future__ import annotations

import os
import subprocess

import pytest

import deployment
import streamed
from failover import send_all_live, service_or_skip, three_nodes_chatting

pytestmark = pytest.mark.skipif(deployment.mode() != "cluster", reason="cluster mode only: starts its own nodes")

BEFORE, AFTER = 5, 10
# The bound on a node that should exit at startup: for a hung test, not a speed claim.
EXIT_WITHIN_S = 60


class TlsRedis:
    """The TLS cluster of `scripts/services.sh up redis-cluster-tls` (or, `kind="sentinel"`,
    the TLS sentinels of `up redis-sentinel-tls`), and the test PKI."""

    def __init__(self, kind: str = "cluster"):
        found = streamed.services()
        key = f"STOMPBOX_REDIS_{kind.upper()}_TLS_URL"
        if key not in found or "STOMPBOX_TEST_CERTS" not in found:
            raise RuntimeError(f"no TLS Redis {kind}: run scripts/services.sh up redis-{kind}-tls")
        self.url = found[key]
        self.certs = found["STOMPBOX_TEST_CERTS"]
        hosts = self.url.split("://", 1)[1].split("/")[0]
        self.ports = [int(seed.rsplit(":", 1)[1]) for seed in hosts.split(",")]

    def ca(self, name: str = "ca.pem") -> str:
        return os.path.join(self.certs, name)

    def cli(self, port: int, *args: str) -> list[str]:
        done = subprocess.run(
            ["redis-cli", "--tls", "--cacert", self.ca(), "-p", str(port), *args],
            capture_output=True, text=True, timeout=10,
        )
        assert done.returncode == 0, f"redis-cli over TLS on {port}: {done.stderr}"
        return [line for line in done.stdout.split("\n") if line]


def test_two_nodes_chat_across_a_tls_redis_cluster(tmp_path, chat, unique):
    redis = service_or_skip(TlsRedis)
    args = ("--redis-ca", redis.ca())
    with three_nodes_chatting(tmp_path, chat, unique, redis.url, BEFORE, extra_args=args, count=2) as talk:
        send_all_live(talk, "over tls", AFTER)
        # The user channels are sharded channels on the TLS cluster (no plain port exists).
        channels = [c for port in redis.ports for c in redis.cli(port, "PUBSUB", "SHARDCHANNELS")]
        assert f"sbx:u:{talk.recipient.login}" in channels, f"recipient's channel not on the TLS cluster: {channels}"
        assert len(talk.live) == BEFORE + AFTER


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_a_node_that_cannot_verify_its_redis_refuses_to_start(tmp_path, kind):
    redis = service_or_skip(lambda: TlsRedis(kind))
    done = subprocess.run(
        [
            str(streamed.broker_binary()),
            "--stomp-listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0",
            "--data-dir", str(tmp_path / "node"),
            "--redis-url", redis.url,
            "--redis-ca", redis.ca("other-ca.pem"),
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("STOMPBOX_")} | {"RUST_BACKTRACE": "0"},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=EXIT_WITHIN_S,
    )
    assert done.returncode != 0, f"a node that cannot verify its Redis {kind} started:\n{done.stdout}"
    assert "stompbox ready" not in done.stdout
    assert "invalid peer certificate" in done.stderr, done.stderr[-2000:]
