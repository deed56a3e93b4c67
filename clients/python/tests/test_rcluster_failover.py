"""A Redis Cluster primary killed mid-chat (issue 16), in `rcluster` mode only.

Three nodes on the Redis Cluster of `scripts/services.sh up redis-cluster` (3 primaries,
3 replicas, `--cluster-node-timeout 2000`) and PostgreSQL. A sender on one node writes to a
recipient on another, one message at a time, each acknowledged by its RECEIPT (stored). Mid-run
the primary serving the recipient's user channel (`sbx:u:<login>`, sharded pub/sub) is
SIGKILLed by its PID; its replica is promoted. Asserted:
- a failover happened: another live primary now serves that slot;
- live delivery resumes: a message acknowledged after the kill reaches the recipient live
  (bounded generously, 30 s: the bound is for a hung test, not a speed claim);
- no acknowledged message is lost: each reached the recipient live or by its sync afterwards,
  and after resumption every message arrives live again.

At the end the killed node is started again (`services.sh up redis-cluster`; it rejoins as a
replica), so the next run finds the cluster whole.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

import deployment
from failover import assert_none_lost, chat_until_live, send_all_live, service_or_skip, three_nodes_chatting

pytestmark = pytest.mark.skipif(deployment.mode() != "rcluster", reason="rcluster mode only: kills a Redis Cluster primary")

# Generous: a failover takes cluster-node-timeout (2 s) plus an election here; the machine is
# shared with builds.
RESUME_WITHIN_S = 30.0
BEFORE, AFTER = 10, 10


def test_a_primary_killed_mid_chat_loses_no_acknowledged_message(tmp_path, chat, unique):
    redis = service_or_skip(deployment.SharedRedisCluster)
    try:
        with three_nodes_chatting(tmp_path, chat, unique, redis.url, BEFORE) as talk:
            channel = f"sbx:u:{talk.recipient.login}"
            killed_port = redis.primary_of(channel)
            os.kill(redis.pid_of(killed_port), signal.SIGKILL)
            killed_at = time.monotonic()

            # Keep chatting through the failover.
            after_kill, took = chat_until_live(talk, killed_at, RESUME_WITHIN_S)
            assert took is not None, f"no message sent after the kill reached the recipient live within {RESUME_WITHIN_S}s"
            # The cluster's own view settles a moment after the clients': ask until it has.
            while time.monotonic() - killed_at < RESUME_WITHIN_S:
                try:
                    if redis.primary_of(channel) != killed_port:
                        break
                except RuntimeError:
                    pass  # no live primary for the slot yet
                time.sleep(0.2)
            assert redis.primary_of(channel) != killed_port, "the slot is still served by the killed node"

            # Past the failover every message arrives live again.
            send_all_live(talk, "after", AFTER)

            # Nothing acknowledged is lost: what did not arrive live is in the recipient's sync.
            assert_none_lost(talk)
            print(
                f"failover: live delivery resumed {took:.1f}s after the kill; {len(after_kill)} acknowledged "
                f"during it, {sum(1 for m in after_kill if m not in talk.live)} of them recovered by sync only"
            )
    finally:
        redis.restore()
