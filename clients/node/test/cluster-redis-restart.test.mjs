// Redis restarted under a chatting cluster: the nodes stay up and keep their clients, delivery
// between users of the same node never stops, cross-node delivery comes back within seconds
// of Redis returning, and no acknowledged message is lost (a member's sync afterwards finds
// every one of them: they were stored before they were acknowledged).
//
// Skips only when the broker binary has no cluster mode (no --redis-url).

import assert from 'node:assert/strict';

import { chatLoop, check, connectAll, createGroups, plan, summary, until } from './chat-load.mjs';
import { chatUser, clusterTest, restartRedis } from './cluster.mjs';
import { sleep, unique, within } from './harness.mjs';

const USERS = 60;
/** Not a multiple of 3: with user i on node i % 3, every group spans all three nodes. */
const GROUP_SIZE = 5;
const MESSAGES = 30;
/** A message counts as delivered live when it reached a member this soon after its RECEIPT. */
const LIVE_MS = 2000;
/** Cross-node delivery must be back this soon after Redis accepts connections again. */
const RECOVERY_MS = 5000;

// Once on the shared PostgreSQL, once writing through Kafka and a sink (`--kafka-brokers`).
for (const storage of [null, 'streamed']) {
  clusterTest(
    `Redis restart: nodes and sessions stay, same-node delivery goes on, cross-node resumes, nothing acknowledged is lost${storage ? ' (Kafka -> sink -> PostgreSQL)' : ''}`,
    async ({ start, users }) => {
      const cluster = await start({ nodes: 3, storage });
      const tag = unique();
      // User i on node i % 3: partners 2k, 2k+1 are always on different nodes.
      for (let i = 0; i < USERS; i += 1) {
        users.push(Object.assign(chatUser(`${tag}-r${i}`, cluster.nodes[i % 3].wsUrl), { node: i % 3 }));
      }
      await connectAll(users);
      const conversations = plan(users, GROUP_SIZE);
      await createGroups(conversations, tag);

      const ledger = [];
      const running = users.map((u) => chatLoop(u, conversations, ledger, { count: MESSAGES, gapMs: [150, 450] }));
      await until(() => ledger.length >= (USERS * MESSAGES) / 4, running, 30_000, 'a quarter of the messages acknowledged');
      const restartAt = Date.now();
      await restartRedis();
      const backAt = Date.now();
      await within(60_000, Promise.all(running), 'every send acknowledged');
      await sleep(LIVE_MS);

      for (const u of users) assert.equal(u.chat.drops, 0, `${u.login} kept its connection through the Redis restart`);
      for (const i of [0, 1, 2]) assert.ok(cluster.alive(i), `node ${i} survived the Redis restart`);

      // Live: which members got each message within LIVE_MS of its RECEIPT, before any resync.
      const late = [];
      for (const e of ledger) {
        const sender = users.find((u) => u.login === e.sender);
        for (const m of conversations.get(e.key).members) {
          const arrival = m.arrivals.get(e.messageId);
          if (arrival && arrival.at - e.ackedAt <= LIVE_MS) continue;
          late.push({ ...e, member: m.login, sameNode: m.node === sender.node });
        }
      }
      const sameNodeLate = late.filter((l) => l.sameNode);
      assert.deepEqual(sameNodeLate.map((l) => `${l.member} ${l.messageId}`), [], 'same-node delivery never stopped');
      const lastLate = Math.max(backAt, ...late.map((l) => l.sentAt));
      // Late cross-node deliveries by when their message was sent, in whole seconds after Redis returned.
      const lateBySecond = {};
      for (const l of late) {
        const s = Math.floor((l.sentAt - backAt) / 1000);
        lateBySecond[s] = (lateBySecond[s] ?? 0) + 1;
      }
      assert.ok(
        lastLate - backAt <= RECOVERY_MS,
        `cross-node delivery back ${lastLate - backAt} ms after Redis returned (restart took ${backAt - restartAt} ms; ` +
          `late by send second ${JSON.stringify(lateBySecond)})`,
      );

      // Durable: a full sync gives every member every acknowledged message, once.
      await Promise.all(users.map((u) => u.chat.resync('0')));
      await sleep(500);
      assert.equal(summary(check(conversations, ledger)), '', 'nothing acknowledged is lost');
      assert.equal(ledger.length, USERS * MESSAGES);
      console.log(
        `redis restart: ${ledger.length} messages, restart took ${backAt - restartAt} ms, ` +
          `${late.length} cross-node deliveries late (by send second after Redis returned: ${JSON.stringify(lateBySecond)}), ` +
          `last late send ${lastLate - backAt} ms after Redis returned`,
      );
    },
  );
}
