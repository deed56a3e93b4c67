// Kafka mode under cluster load with its sink crashing (issue 16): three nodes writing through
// Kafka (tansu) and one `stompbox-sink` into PostgreSQL, users chatting one-on-one and in groups
// (chat-load.mjs), and the sink killed with SIGKILL twice: once mid-load and left down for a
// while, once right after its restart, while it catches up. A RECEIPT means Kafka acknowledged
// the message, so the sink's crashes must cost no acknowledged message. In the end:
// - every member holds every acknowledged message exactly once, in order (live delivery does
//   not go through the sink);
// - PostgreSQL holds each acknowledged message exactly once, and nothing else: the sink commits
//   its rows and its Kafka offsets in one transaction, so a batch lost with the process is
//   applied again, never twice;
// - a fresh session of every user, syncing from nothing, gets all of them (the replay comes
//   from what the sink stored).
//
// A crash of the Kafka broker itself is cluster-tansu-kill.test.mjs (its own tansu on SQLite
// storage: the tansu of scripts/services.sh keeps its log in memory).

import assert from 'node:assert/strict';

import { until } from './chat-load.mjs';
import { clusterTest } from './cluster.mjs';
import { sleep } from './harness.mjs';
import { assertNothingLost, startKafkaChat } from './kafka-crash.mjs';
import { query } from './storage.mjs';

const USERS = Number(process.env.STOMPBOX_CLUSTER_USERS ?? 120);
const MESSAGES = 40;
/**
 * How long the sink stays dead each time: past its session (`--session-timeout 6s`,
 * storage.mjs). tansu 0.6.0 gives a sink restarted *within* the killed one's session no
 * partitions, and none after that session expires either (seen here: `partitions assigned []`
 * for 30 s); Kafka would rebalance when the session expires. Restarted after it, the sink
 * joins alone and gets every partition (docs/persistence.md, "tansu findings").
 */
const DOWN_MS = 8000;

clusterTest('kill -9 of the sink under cluster load (Kafka mode): no acknowledged message lost or stored twice', async ({ start, users }) => {
  const load = await startKafkaChat(start, users, { count: USERS, messages: MESSAGES });
  const { storage, ledger, total, running } = load;

  // Twice: mid-load with nothing special going on, then as soon as the restarted sink has
  // applied something (catching up on the backlog the first outage left).
  await until(() => ledger.length >= total / 5, running, 30_000, 'a fifth of the messages acknowledged');
  for (const when of ['mid-load', 'catching up']) {
    if (when === 'catching up') {
      const rows = async () => Number((await query(storage.url, 'SELECT count(*) FROM messages'))[0][0]);
      const before = await rows();
      for (const end = Date.now() + 30_000; (await rows()) === before; await sleep(100)) {
        assert.ok(Date.now() < end, 'the restarted sink applied nothing within 30 s');
      }
    }
    await storage.killSink();
    const atKill = ledger.length;
    await sleep(DOWN_MS);
    assert.ok(ledger.length > atKill, `sends were acknowledged while the sink was dead (${when})`);
    await storage.restartSink();
  }
  const rows = await assertNothingLost(load, users);
  const retried = ledger.filter((e) => e.tries > 1).length;
  console.log(`sink killed twice: ${USERS} users, ${ledger.length} acknowledged messages (${retried} retried), ${rows.size} rows`);
});
