// The end checks of the Kafka-mode crash tests (sink killed, Kafka broker killed), shared:
// what the sink stored in PostgreSQL against the ledger of acknowledged messages, and a fresh
// sync of every user from what was stored.

import assert from 'node:assert/strict';

import { check, connectAll, summary } from './chat-load.mjs';
import { chatUser } from './cluster.mjs';
import { sleep } from './harness.mjs';
import { query } from './storage.mjs';

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
export async function assertStoredOnce(url, ledger, ms = 30_000) {
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
export async function assertFreshSync(users, conversations, ledger, lbUrl) {
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
