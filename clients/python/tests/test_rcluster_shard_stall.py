"""One Redis Cluster shard failing over must not stall cross-node delivery through the others
(issue 16's "one shard failing over stalls the whole publish batch"), in `rcluster` mode only.

Three nodes on a private Redis Cluster (3 primaries, 3 replicas, `--cluster-node-timeout 2000`;
`deployment.PrivateRedisCluster`, so killing a primary disturbs no other test). A sender on node 0
chats with two recipients on node 1: `stuck`, whose user channel (`sbx:u:<login>`, sharded
pub/sub) lives on the primary that gets SIGKILLed, and `free`, whose channel lives on another
primary. Through the failover, and a second past it, the sender keeps writing to both without
waiting for RECEIPTs, so the node's publish queue always holds copies for the dead shard ahead
of copies for the live one. Asserted: every message to `free` arrives live. Two things stand
in the way: the publisher, which sent one pipeline for all slots at a time and failed the live
shard's copies together with the dead shard's, and the subscriber. Neither is fixed, hence
the xfail below. (A lane per slot in the publisher was tried on branch `kafkakill2`, commit
d95dea2, and not merged: alone it did not make this pass, and it clashed with EVALSHA. This file
is a reproduction, not part of scripts/test.sh.)
"""

from __future__ import annotations

import os
import signal
import time

import pytest

import deployment
from conftest import start_nodes_on_redis

pytestmark = [
    pytest.mark.skipif(deployment.mode() != "rcluster", reason="rcluster mode only: kills a Redis Cluster primary"),
    # Fails today, on the subscriber side: each node has one cluster pub/sub connection for all
    # shards; a dead shard ends it, and resubscribing everything times out on that shard until
    # the failover is over, so the live shard's channels are not listened to either (16 of 40
    # and 46 of 66 lost live in two runs). Strict: once the subscriber keeps the live shards'
    # subscriptions this passes, and the marker must go.
    pytest.mark.xfail(strict=True, reason="one cluster pub/sub connection for all shards: a dead shard pauses them all"),
]

# Generous, for a hung test only: a failover takes cluster-node-timeout (2 s) plus an election.
WITHIN_S = 30.0


def login_on(redis, prefix: str, want=None, avoid=None) -> tuple[str, int]:
    """A login whose user channel is served by primary `want` (any when None), not by `avoid`."""
    for k in range(200):
        login = f"{prefix}{k}"
        port = redis.primary_of(f"sbx:u:{login}")
        if (want is None or port == want) and port != avoid:
            return login, port
    raise AssertionError(f"no login {prefix}N on the primary wanted")


def test_a_shard_failing_over_does_not_stall_the_other_shards(tmp_path, chat, unique):
    redis = deployment.PrivateRedisCluster()
    nodes = []
    try:
        nodes = start_nodes_on_redis(tmp_path, redis.url)
        stuck_login, killed_port = login_on(redis, f"stuck-{unique}-")
        free_login, _ = login_on(redis, f"free-{unique}-", avoid=killed_port)
        sender = chat(f"sender-{unique}", target=nodes[0])
        stuck = chat(stuck_login, target=nodes[1])
        free = chat(free_login, target=nodes[1])
        to_stuck = sender.create("DIRECT", [stuck.login])["conversationId"]
        to_free = sender.create("DIRECT", [free.login])["conversationId"]
        stuck.event("conversations")
        free.event("conversations")
        # Cross-node delivery works to both before the kill.
        for who, conversation in ((stuck, to_stuck), (free, to_free)):
            sent = sender.send_message("before", conversation=conversation)
            assert who.event("messages")["messageId"] == sent

        os.kill(redis.pid_of(killed_port), signal.SIGKILL)
        killed_at = time.monotonic()
        # Sends without waiting for RECEIPTs (a RECEIPT waits for the copies to leave, up to
        # 2 s): the dead shard's copies queue ahead of the live one's, as under real traffic.
        # Through the failover and one second past it.
        sent_to_free: list[str] = []
        live: dict[str, float] = {}
        failed_over_at = None
        i = 0
        while time.monotonic() - killed_at < WITHIN_S:
            now = time.monotonic()
            if failed_over_at is None:
                try:
                    if redis.primary_of(f"sbx:u:{stuck_login}") != killed_port:
                        failed_over_at = now
                except RuntimeError:
                    pass  # no live primary for the slot yet
            elif now - failed_over_at > 1.0:
                break
            sender.request("chat.send", {"conversationId": to_stuck, "content": f"stuck {i}", "clientMessageId": f"s{i}-{unique}"}, receipt=False)
            sender.request("chat.send", {"conversationId": to_free, "content": f"free {i}", "clientMessageId": f"f{i}-{unique}"}, receipt=False)
            sent_to_free.append(f"f{i}-{unique}")
            i += 1
            time.sleep(0.05)
            for m in free.drain("messages"):
                live.setdefault(m.get("clientMessageId"), time.monotonic() - killed_at)
        assert failed_over_at is not None, f"no failover within {WITHIN_S}s"
        deadline = time.monotonic() + 10
        while not set(sent_to_free) <= set(live) and time.monotonic() < deadline:
            time.sleep(0.05)
            for m in free.drain("messages"):
                live.setdefault(m.get("clientMessageId"), time.monotonic() - killed_at)
        missing = [c for c in sent_to_free if c not in live]
        first = min((live[c] for c in sent_to_free if c in live), default=None)
        print(
            f"failover {failed_over_at - killed_at:.2f}s after the kill; {len(sent_to_free)} sent to the live shard, "
            f"{len(missing)} never arrived live; first arrival {first}s after the kill"
        )
        # Every copy for the live shard left and arrived: the dead shard's failure is its own.
        assert not missing, f"{len(missing)} of {len(sent_to_free)} messages to {free_login} (a live shard) never arrived live"
    finally:
        for node in nodes:
            node.stop()
        redis.stop()
