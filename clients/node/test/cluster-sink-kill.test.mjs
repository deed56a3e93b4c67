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

import { settle, startChat, summary, until } from './chat-load.mjs';
import { chatUser, clusterTest } from './cluster.mjs';
import { sleep, unique, within } from './harness.mjs';
import { query } from './storage.mjs';
import { assertFreshSync, assertStoredOnce } from './stored-check.mjs';

const USERS = Number(process.env.STOMPBOX_CLUSTER_USERS ?? 120);
const GROUP_SIZE = 10;
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
  // One record per produce batch: tansu 0.6.0 serves multi-record batches back with offsets
  // that disagree with its produce acks, so a sink resuming mid-topic would skip records that
  // real Kafka keeps (docs/persistence.md, "tansu findings"; persistence-sink/tests/sink_killed.rs
  // produces the same way).
  const nodeArgs = ['--kafka-option', 'batch.num.messages=1'];
  const cluster = await start({ nodes: 3, nodeArgs, storage: 'streamed' });
  const { storage } = cluster;
  const tag = unique();
  for (let i = 0; i < USERS; i += 1) users.push(chatUser(`${tag}-u${i}`, cluster.lbUrl));
  const chat = { groupSize: GROUP_SIZE, count: MESSAGES, gapMs: [100, 500] };
  const { conversations, ledger, total, running } = await startChat(users, tag, chat);

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
  await within(60_000, Promise.all(running), 'every send acknowledged');

  const problems = await settle(conversations, ledger, 20_000);
  assert.equal(summary(problems), '', 'every member holds every acknowledged message exactly once');
  assert.equal(ledger.length, total);

  // PostgreSQL: each acknowledged message once, nothing else; a fresh sync replays them all.
  const rows = await assertStoredOnce(storage.url, ledger);
  await assertFreshSync(users, conversations, ledger, cluster.lbUrl);
  const retried = ledger.filter((e) => e.tries > 1).length;
  console.log(`sink killed twice: ${USERS} users, ${ledger.length} acknowledged messages (${retried} retried), ${rows.size} rows`);
});
