// Kafka mode under cluster load with the Kafka broker crashing (issue 16): three nodes writing
// through a tansu of the test's own that keeps its log in a SQLite file (durable-tansu.mjs),
// one `stompbox-sink` into PostgreSQL, users chatting one-on-one and in groups (chat-load.mjs).
// Mid-load the sink gets SIGKILL, then, once Kafka has acknowledged more messages the dead sink
// cannot store, tansu too; tansu stays dead for a while, then starts again on the same port and
// database, and the sink after it. So at the crash some acknowledged messages exist nowhere but
// in tansu's log (the test counts them in PostgreSQL and requires some): a tansu that lost them
// (memory storage: STOMPBOX_TANSU_STORAGE=memory) fails this test.
// In the end:
// - no RECEIPT came while tansu was dead (a RECEIPT means Kafka acknowledged the message);
// - the sends made during the outage were retried by the nodes' producers and acknowledged
//   after the restart (none refused: the outage is shorter than --kafka-timeout, 30 s);
// - every member holds every acknowledged message exactly once, in order;
// - PostgreSQL holds each acknowledged message exactly once, and nothing else;
// - a fresh session of every user, syncing from nothing, gets all of them.

import assert from 'node:assert/strict';

import { until } from './chat-load.mjs';
import { clusterTest } from './cluster.mjs';
import { startDurableTansu } from './durable-tansu.mjs';
import { sleep } from './harness.mjs';
import { assertNothingLost, startKafkaChat } from './kafka-crash.mjs';
import { query } from './storage.mjs';

const USERS = Number(process.env.STOMPBOX_CLUSTER_USERS ?? 60);
const MESSAGES = 30;
/**
 * How long tansu and the sink stay dead: past the sink's session (`--session-timeout 6s`,
 * storage.mjs), for tansu 0.6.0's group quirk (cluster-sink-kill.test.mjs, DOWN_MS), and well
 * under the nodes' delivery timeout (30 s), so the sends of the outage wait rather than fail.
 */
const DOWN_MS = 8000;
/** A RECEIPT already on its way when tansu died may still land; past this, none may. */
const IN_FLIGHT_MS = 2000;
/** Messages Kafka must acknowledge between the sink's kill and tansu's (~1 s of this load). */
const ONLY_IN_KAFKA = 100;

clusterTest('kill -9 of the Kafka broker under cluster load (Kafka mode): no acknowledged message lost or stored twice', async ({ start, users, afterCluster }) => {
  const tansu = await startDurableTansu();
  afterCluster.push(() => tansu.stop());
  const load = await startKafkaChat(start, users, { count: USERS, messages: MESSAGES, kafkaBrokers: tansu.brokers });
  const { storage, ledger, total, running } = load;

  await until(() => ledger.length >= total / 4, running, 30_000, 'a quarter of the messages acknowledged');
  await storage.killSink();
  const atSinkKill = ledger.length;
  await until(() => ledger.length >= atSinkKill + ONLY_IN_KAFKA, running, 30_000, 'acknowledged with the sink dead');
  await tansu.kill();
  const killedAt = Date.now();
  const atKill = ledger.length;
  // Acknowledged (by Kafka) but not in PostgreSQL when tansu died: only tansu's log holds them.
  const stored = new Set((await query(storage.url, 'SELECT message_id FROM messages')).map(([id]) => id));
  const onlyInKafka = ledger.slice(0, atKill).filter((e) => !stored.has(e.messageId)).length;
  assert.ok(onlyInKafka >= ONLY_IN_KAFKA, `only ${onlyInKafka} acknowledged messages were in tansu's log alone at the kill`);
  await sleep(DOWN_MS);
  const restartedAt = Date.now();
  const duringOutage = ledger.filter((e) => e.ackedAt > killedAt + IN_FLIGHT_MS && e.ackedAt < restartedAt);
  assert.deepEqual(duringOutage.map((e) => e.content), [], 'acknowledged while Kafka was dead');
  await tansu.restart();
  await storage.restartSink();
  const rows = await assertNothingLost(load, users);
  const waited = ledger.filter((e) => e.sentAt < restartedAt && e.ackedAt > restartedAt).length;
  assert.ok(waited > 0, 'sends of the outage were held and acknowledged after the restart');
  const retried = ledger.filter((e) => e.tries > 1).length;
  console.log(`tansu killed for ${DOWN_MS} ms at ${atKill} acks (${onlyInKafka} of them in its log alone): ` +
    `${USERS} users, ${ledger.length} acknowledged messages ` +
    `(${waited} waited for the restart, ${retried} retried), ${rows.size} rows`);
});
