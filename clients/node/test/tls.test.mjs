// @stomp/stompjs over wss:// (issue 12): the broker's --https-listen with the test CA
// (scripts/test-certs.sh), a client certificate as the user (docs/security/tls.md), a login
// that names someone else refused, and an untrusted client certificate refused.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { TestClient, clientPool, startBroker, unique } from './harness.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const certs = mkdtempSync(path.join(tmpdir(), 'stompbox-node-certs-'));
execFileSync(path.join(REPO, 'scripts/test-certs.sh'), [certs], { stdio: 'ignore' });
const pem = (name) => readFileSync(path.join(certs, name));

/** `ws` TLS options: trust the test CA, present `client-<name>.pem` when given. */
const tlsOptions = (client) => ({
  ca: pem('ca.pem'),
  ...(client ? { cert: pem(`client-${client}.pem`), key: pem(`client-${client}-key.pem`) } : {}),
});

let broker;
// The broker as TestClient sees it: its WebSocket URL is the wss:// one.
const wss = () => ({ ...broker, wsUrl: broker.wssUrl });
const pool = clientPool(wss);
before(async () => {
  broker = await startBroker(
    '--https-listen', '127.0.0.1:0',
    '--tls-cert', path.join(certs, 'server.pem'),
    '--tls-key', path.join(certs, 'server-key.pem'),
    '--tls-client-ca', path.join(certs, 'ca.pem'),
  );
  assert.ok(broker.wssUrl, 'the ready line names the https listener');
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

test('stompjs over wss:// with the test CA: a round trip', async () => {
  const alice = await pool.connect({ login: 'alice', wsOptions: tlsOptions() });
  assert.equal(alice.frames.connected.headers['user-name'], 'alice');
  const bob = await pool.connect({ login: 'bob', wsOptions: tlsOptions() });
  const dest = `/topic/wss-${unique()}`;
  const inbox = await alice.subscribe(dest);
  await bob.publish({ destination: dest, body: 'over wss' });
  const message = await inbox.next();
  assert.equal(message.body, 'over wss');
  assert.equal(message.headers['user-id'], 'bob');
});

test('a client certificate names the user when CONNECT has no login', async () => {
  const alice = await pool.connect({ login: '', wsOptions: tlsOptions('alice') });
  assert.equal(alice.frames.connected.headers['user-name'], 'alice');
  const dest = `/topic/wss-cert-${unique()}`;
  const inbox = await alice.subscribe(dest);
  await alice.publish({ destination: dest, body: 'signed', headers: { 'user-id': 'mallory' } });
  assert.equal((await inbox.next()).headers['user-id'], 'alice');
});

test('a login naming someone else than the certificate is refused with ERROR', async () => {
  const c = new TestClient(wss(), { login: 'bob', wsOptions: tlsOptions('alice') });
  await assert.rejects(c.connect(), /ERROR before CONNECTED: authentication failed/);
  await c.close();
});

test('an untrusted client certificate fails the TLS handshake', async () => {
  const c = new TestClient(wss(), { login: 'mallory', wsOptions: tlsOptions('mallory') });
  await assert.rejects(c.connect(), /closed before CONNECTED/);
  await c.close();
});
