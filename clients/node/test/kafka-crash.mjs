// What the Kafka-mode crash tests (sink killed, Kafka broker killed) share: the chat load on a
// 3-node cluster writing through Kafka, and the end checks — every member's view, what the sink
// stored in PostgreSQL against the ledger of acknowledged messages, and a fresh sync of every
// user from what was stored.

import assert from 'node:assert/strict';

import { check, connectAll, settle, startChat, summary } from './chat-load.mjs';
import { chatUser } from './cluster.mjs';
import { sleep, unique, within } from './harness.mjs';
import { query } from './storage.mjs';

const GROUP_SIZE = 10;

/**
 * Starts 3 nodes in Kafka mode (`kafkaBrokers`: another Kafka than the services' tansu) and
 * `count` users sending `messages` each (chat-load.mjs, `startChat`), 100–500 ms apart.
 * `start` and `users` are clusterTest's.
 */
export async function startKafkaChat(start, users, { count, messages, kafkaBrokers = null }) {
  // One record per produce batch: tansu 0.6.0 serves multi-record batches back with offsets
  // that disagree with its produce acks, so a sink resuming mid-topic would skip records that
  // real Kafka keeps (docs/persistence.md, "tansu findings"; persistence-sink/tests/sink_killed.rs
  // produces the same way).
  const nodeArgs = ['--kafka-option', 'batch.num.messages=1'];
  const cluster = await start({ nodes: 3, nodeArgs, storage: 'streamed', kafkaBrokers });
  const tag = unique();
  for (let i = 0; i < count; i += 1) users.push(chatUser(`${tag}-u${i}`, cluster.lbUrl));
  const chat = { groupSize: GROUP_SIZE, count: messages, gapMs: [100, 500] };
  return { cluster, storage: cluster.storage, ...(await startChat(users, tag, chat)) };
}

/**
 * After the crashes: every send acknowledged (within 60 s), every member holds every
 * acknowledged message exactly once and in order, PostgreSQL holds each once and nothing else,
 * and a fresh sync replays them all. Returns the stored rows.
 */
export async function assertNothingLost({ cluster, conversations, ledger, total, running }, users) {
  await within(60_000, Promise.all(running), 'every send acknowledged');
  const problems = await settle(conversations, ledger, 20_000);
  assert.equal(summary(problems), '', 'every member holds every acknowledged message exactly once');
  assert.equal(ledger.length, total);
  const rows = await assertStoredOnce(cluster.storage.url, ledger);
  await assertFreshSync(users, conversations, ledger, cluster.lbUrl);
  return rows;
}

/** Rows of the messages table: messageId -> [sender, clientMessageId] per row. */
async function storedRows(url) {
  const rows = new Map();
  for (const [id, sender, clientId] of await query(url, 'SELECT message_id, sender_id, client_message_id FROM messages')) {
    (rows.get(id) ?? rows.set(id, []).get(id)).push([sender, clientId]);
  }
  return rows;
}

/**
 * PostgreSQL at `url` holds each acknowledged message of `ledger` exactly once (waiting up to
 * `ms` for the sink to catch up), under its sender and client id, and nothing else.
 * @returns {Promise<Map<string, string[][]>>} the rows
 */
async function assertStoredOnce(url, ledger, ms = 30_000) {
  let rows = new Map();
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    rows = await storedRows(url);
    if (ledger.every((e) => rows.has(e.messageId))) break;
    await sleep(250);
  }
  const lost = ledger.filter((e) => !rows.has(e.messageId));
  assert.deepEqual(lost.map((e) => e.content), [], 'acknowledged but never stored');
  const twice = [...rows].filter(([, r]) => r.length > 1).map(([id]) => id);
  assert.deepEqual(twice, [], 'stored twice under one id');
  const acked = new Set(ledger.map((e) => e.messageId));
  const unacked = [...rows.keys()].filter((id) => !acked.has(id));
  assert.deepEqual(unacked, [], 'stored without an acknowledgement (a retry stored under a second id?)');
  const ledgerById = new Map(ledger.map((e) => [e.messageId, e]));
  for (const [id, [[sender, clientId]]] of rows) {
    assert.deepEqual([sender, clientId], [ledgerById.get(id).sender, ledgerById.get(id).clientMessageId], `row ${id}`);
  }
  return rows;
}

/** A fresh session of every user, syncing from nothing via `lbUrl`, gets every acknowledged message once. */
async function assertFreshSync(users, conversations, ledger, lbUrl) {
  const readers = new Map(users.map((u) => [u, chatUser(u.login, lbUrl)]));
  try {
    await connectAll([...readers.values()]);
    const asRead = new Map(
      [...conversations].map(([key, c]) => [key, { ...c, members: c.members.map((m) => readers.get(m)) }]),
    );
    assert.equal(summary(check(asRead, ledger)), '', 'a fresh sync replays every acknowledged message once');
  } finally {
    await Promise.all([...readers.values()].map((r) => r.chat.stop().catch(() => {})));
  }
}
