// Benchmark (not a test): how long until the clients of a killed node are back and resynced.
//
// C chat users (stomp.js + examples/node/resilient-chat.mjs) connect straight to one node,
// and a sender on another node has a conversation with each. Then that node gets SIGKILL and
// at once the sender writes to every one of them. Each client reconnects through nginx with
// exponential backoff and full jitter (first retry uniform in [0, 250 ms)), syncs from its last
// id and is "back" once the sync's end marker arrived; afterwards each must hold the message
// written while it was away. Prints one JSON line: time until all are back, per-client p50/p99.
//
//   node bench/reconnect-storm.mjs --lb ws://127.0.0.1:P/ws --node ws://127.0.0.1:Q/ws --pid PID \
//       --other ws://127.0.0.1:R/ws [--clients 1000]
//
// scripts/bench-cluster.sh runs it on a cluster it starts.

import { parseArgs } from 'node:util';

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

import { ResilientChat } from '../../../examples/node/resilient-chat.mjs';

const { values: opt } = parseArgs({
  options: {
    lb: { type: 'string' },
    node: { type: 'string' },
    pid: { type: 'string' },
    other: { type: 'string' },
    clients: { type: 'string', default: '1000' },
    prefix: { type: 'string', default: `storm${Date.now().toString(36)}` },
  },
});
const count = Number(opt.clients);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

const users = Array.from({ length: count }, (_, i) => {
  let first = true;
  const chat = new ResilientChat({
    Client,
    WebSocket,
    login: `${opt.prefix}-${i}`,
    url: () => (first ? ((first = false), opt.node) : opt.lb),
    heartbeat: { outgoing: 10_000, incoming: 0 },
  });
  return { chat, attempts: 0, droppedAt: null, connectedAt: null, backAt: null };
});

const sender = new ResilientChat({ Client, WebSocket, login: `${opt.prefix}-sender`, url: opt.other });
await sender.start();
// Connect in batches: the setup is not what is measured.
for (let i = 0; i < count; i += 100) await Promise.all(users.slice(i, i + 100).map((u) => u.chat.start()));
const hello = (u, content) => sender.send({ recipientId: u.chat.login, content });
for (let i = 0; i < count; i += 100) await Promise.all(users.slice(i, i + 100).map((u) => hello(u, 'before')));
await sleep(500);

process.kill(Number(opt.pid), 'SIGKILL');
const killedAt = performance.now();
const away = users.map((u) => hello(u, 'while you were away'));
// "Back" = reconnected (second CONNECTED) and synced; polled every 5 ms.
for (;;) {
  const now = performance.now();
  let pending = 0;
  for (const u of users) {
    if (u.droppedAt === null && u.chat.drops >= 1) u.droppedAt = now - killedAt;
    if (u.connectedAt === null && u.chat.connects >= 2) u.connectedAt = now - killedAt;
    if (u.backAt === null && u.chat.connects >= 2 && u.chat.synced) u.backAt = now - killedAt;
    if (u.backAt === null) pending += 1;
  }
  if (pending === 0) break;
  if (now - killedAt > 120_000) throw new Error(`${pending} clients not back after 120 s`);
  await sleep(5);
}
const sorted = (key) => users.map((u) => u[key]).sort((a, b) => a - b);
const back = sorted('backAt');
const [dropped, connected] = [sorted('droppedAt'), sorted('connectedAt')];
await Promise.all(away);
const holds = (u) => [...u.chat.seen.values()].some((m) => m.content === 'while you were away');
for (let waited = 0; waited < 10_000 && !users.every(holds); waited += 100) await sleep(100);
const missing = users.filter((u) => !holds(u)).length;
console.log(
  JSON.stringify({
    clients: count,
    all_back_ms: Math.round(back.at(-1)),
    p50_ms: Math.round(quantile(back, 0.5)),
    p99_ms: Math.round(quantile(back, 0.99)),
    first_ms: Math.round(back[0]),
    // The phases: socket loss seen, CONNECTED again (through nginx), sync finished.
    dropped_p50_ms: Math.round(quantile(dropped, 0.5)),
    connected_p50_ms: Math.round(quantile(connected, 0.5)),
    connected_p99_ms: Math.round(quantile(connected, 0.99)),
    without_the_message_sent_while_away: missing,
  }),
);
await Promise.all([sender, ...users.map((u) => u.chat)].map((c) => c.stop()));
process.exit(missing === 0 ? 0 : 2);
