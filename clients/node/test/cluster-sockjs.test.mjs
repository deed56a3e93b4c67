// SockJS behind nginx in a cluster: three nodes behind the shipped nginx config
// (examples/nginx/stompbox.conf, rendered by scripts/cluster.sh), stompjs clients on
// sockjs-client forced onto xhr-polling, whose sessions are many short requests. nginx must send
// all of a session's requests to one node (it hashes the session id in the path): with the
// WebSocket's least_conn a poll lands on a node that never heard of the session, which opens a
// new one, and the client's sends get 404. Every client receives every client's message across
// nodes, and the sessions are spread over more than one node.
//
// Skips only when the broker binary has no cluster mode (no --redis-url).

import assert from 'node:assert/strict';

import { Client } from '@stomp/stompjs';
import SockJS from 'sockjs-client';

import { clusterTest } from './cluster.mjs';
import { unique, within, WAIT_MS } from './harness.mjs';

const CLIENTS = 8;

clusterTest('xhr-polling through nginx: each session sticks to one node; messages cross nodes', async ({ start }) => {
  const cluster = await start({ nodes: 3 });
  const url = cluster.lbUrl.replace(/^ws:/, 'http:');
  const destination = `/topic/sockjs-cluster-${unique()}`;
  const clients = [];
  const inboxes = [];
  try {
    for (let i = 0; i < CLIENTS; i += 1) {
      const inbox = [];
      const client = new Client({
        webSocketFactory: () => new SockJS(url, null, { transports: ['xhr-polling'] }),
        connectHeaders: { login: `u${i}`, passcode: 'unused' },
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
        debug: () => {},
      });
      const connected = new Promise((resolve, reject) => {
        client.onConnect = resolve;
        client.onStompError = (f) => reject(new Error(`ERROR ${f.headers.message}`));
        client.onWebSocketClose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
      });
      client.activate();
      await within(WAIT_MS, connected, `client ${i} CONNECTED`);
      const subscribed = new Promise((resolve) => client.watchForReceipt(`sub-${i}`, resolve));
      client.subscribe(destination, (m) => inbox.push(m.body), { receipt: `sub-${i}` });
      await within(WAIT_MS, subscribed, `client ${i} subscribed`);
      clients.push(client);
      inboxes.push(inbox);
    }
    for (let i = 0; i < CLIENTS; i += 1) {
      const sent = new Promise((resolve) => clients[i].watchForReceipt(`pub-${i}`, resolve));
      clients[i].publish({ destination, body: `from ${i}`, headers: { receipt: `pub-${i}` } });
      await within(WAIT_MS, sent, `client ${i} RECEIPT`);
    }
    const want = Array.from({ length: CLIENTS }, (_, i) => `from ${i}`);
    const everyone = async () => {
      while (!inboxes.every((inbox) => inbox.length >= CLIENTS)) await new Promise((r) => setTimeout(r, 50));
    };
    await within(WAIT_MS * 2, everyone(), 'every message at every client');
    for (const inbox of inboxes) assert.deepEqual([...inbox].sort(), want);
  } finally {
    await Promise.all(clients.map((c) => c.deactivate().catch(() => {})));
  }
  const nodesWithSockJs = cluster.nodes.filter((_, i) => /transport="?sockjs/.test(cluster.log(i)));
  assert.ok(nodesWithSockJs.length >= 2, `sessions spread over ${nodesWithSockJs.length} node(s)`);
});
