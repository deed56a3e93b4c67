// Runs ResilientChat against a cluster: sends to a peer every 2 s and prints what arrives,
// every reconnect, and what a reconnect replayed. Kill the node it is on and watch it come back
// through the load balancer and resend what was not acknowledged.
//
//   scripts/setup-node.sh && scripts/cluster.sh up
//   node examples/node/chat-demo.mjs "$(sed -n 's/^STOMPBOX_LB_URL=//p' .run/cluster/cluster.env)" alice bob
//
// It borrows @stomp/stompjs and ws from clients/node (installed by scripts/setup-node.sh).

import { createRequire } from 'node:module';

import { ResilientChat } from './resilient-chat.mjs';

const fromClients = createRequire(new URL('../../clients/node/package.json', import.meta.url));
const { Client } = fromClients('@stomp/stompjs');
const WebSocket = fromClients('ws');

const [url = 'ws://127.0.0.1:8080/ws', login = 'alice', peer = 'bob'] = process.argv.slice(2);
const chat = new ResilientChat({
  Client,
  WebSocket,
  url,
  login,
  onMessage: (m) => console.log(`${m.messageId} ${m.senderId}: ${m.content}`),
  onPresence: (p) => console.log(`presence ${p.userId} ${p.status}`),
  onError: (e) => console.warn('error', e),
  beforeReconnect: async (c) => console.log(`reconnecting (attempt ${c.failures + 1}), last id ${c.lastId}`),
});
await chat.start();
console.log(`${login} connected to ${url}`);
let n = 0;
setInterval(async () => {
  const text = `${login} says ${(n += 1)}`;
  try {
    const { messageId, tries } = await chat.send({ recipientId: peer, content: text });
    console.log(`acknowledged ${messageId} after ${tries} ${tries === 1 ? 'try' : 'tries'}`);
  } catch (err) {
    console.warn(`not sent: ${err.message}`);
  }
}, 2000);
process.on('SIGINT', async () => {
  await chat.stop();
  process.exit(0);
});
