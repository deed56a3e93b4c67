// Test harness for the @stomp/stompjs suite: starts a real `stompbox` on port 0, connects stompjs
// clients over WebSocket (the `ws` package; Node 20 has no global WebSocket), and turns callbacks
// into promises that reject after a timeout instead of hanging.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

import { createStorage, storageMode } from './storage.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** A debug build on a loaded 2-core machine; a broker binds in milliseconds. */
const READY_TIMEOUT_MS = 30_000;
/** SIGTERM starts a graceful shutdown; past this, SIGKILL so a stuck broker cannot hang the run. */
const STOP_TIMEOUT_MS = 10_000;
/** Default bound for every wait on a frame. */
export const WAIT_MS = 5_000;
/** stompjs offers these, highest first, like a browser app would. */
export const SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

// The TLS listeners follow when started with --stomp-tls-listen / --https-listen.
const READY_RE = /^stompbox ready stomp=(\S+):(\d+) http=(\S+):(\d+)(?: stomp_tls=\S+:(\d+))?(?: https=\S+:(\d+))?$/;

export function brokerBinary() {
  if (process.env.STOMPBOX_BIN) return process.env.STOMPBOX_BIN;
  const target = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO, process.env.CARGO_TARGET_DIR)
    : path.join(REPO, 'target');
  return path.join(target, 'debug', 'stompbox');
}

/** Rejects with `what` unless `promise` settles within `ms`. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A destination-safe suffix so tests sharing a broker never see each other's messages. */
export const unique = () => randomUUID().slice(0, 12);

/**
 * Starts `stompbox` on ephemeral ports and resolves once it printed its ready line.
 * @returns {Promise<{host: string, stompPort: number, httpPort: number, wsUrl: string, stompTlsPort: number | null, wssUrl: string | null, log: () => string, stop: () => Promise<void>}>}
 */
export async function startBroker(...extraArgs) {
  const binary = brokerBinary();
  if (!existsSync(binary)) {
    throw new Error(`broker binary ${binary} not found; run \`cargo build -p stompbox\` or set STOMPBOX_BIN`);
  }
  // Its own store directory, never the repo's cwd nor another broker's.
  const dataDir = mkdtempSync(path.join(tmpdir(), 'stompbox-node-'));
  // A developer's STOMPBOX_* settings (config file, heartbeat, auth) must not leak into tests.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STOMPBOX_')));
  // Stop at once: no load balancer polls a test broker's readiness (a flag would override).
  env.STOMPBOX_DRAIN_DELAY = '0';
  env.STOMPBOX_DRAIN_PERIOD = '0';
  // STOMPBOX_TEST_STORAGE: PostgreSQL (and Kafka + a sink) instead of the embedded store.
  const mode = storageMode();
  const storage = mode ? await createStorage(mode, env) : { args: [], stop: async () => {} };
  const child = spawn(
    binary,
    ['--stomp-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--data-dir', dataDir,
      ...storage.args, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  // Keep the tail of stderr for failure messages; draining it also keeps the broker unblocked.
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-16_384);
  });
  const exited = once(child, 'exit');
  const lines = readline.createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      const m = READY_RE.exec(line.trim());
      if (m) resolve(m);
    });
    exited.then(([code, signal]) =>
      reject(new Error(`broker exited (${code ?? signal}) before ready:\n${stderr}`)),
    );
  });
  let m;
  try {
    m = await within(READY_TIMEOUT_MS, ready, 'broker ready line');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const [, , stompPort, http, httpPort, stompTlsPort, httpsPort] = m;
  return {
    host: m[1],
    stompPort: Number(stompPort),
    httpPort: Number(httpPort),
    wsUrl: `ws://${http}:${httpPort}/ws`,
    stompTlsPort: stompTlsPort ? Number(stompTlsPort) : null,
    // `localhost`, the name the test server certificate is for.
    wssUrl: httpsPort ? `wss://localhost:${httpsPort}/ws` : null,
    log: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        try {
          await within(STOP_TIMEOUT_MS, exited, 'broker exit after SIGTERM');
        } catch {
          child.kill('SIGKILL');
          await exited;
        }
      }
      await storage.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A stompjs Client plus everything it observed. `connect()` resolves once CONNECTED arrived.
 */
export class TestClient {
  constructor(broker, { login = 'guest', protocols = SUBPROTOCOLS, wsOptions = {}, ...config } = {}) {
    this.frames = { connected: null, errors: [], closes: [] };
    this.socket = null;
    this.waiters = { error: [], close: [] };
    this.client = new Client({
      webSocketFactory: () => {
        this.socket = new WebSocket(broker.wsUrl, protocols ?? [], wsOptions);
        return this.socket;
      },
      connectHeaders: { login, passcode: 'unused' },
      reconnectDelay: 0, // a test wants to see a drop, not a silent reconnect
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => {},
      ...config,
    });
    this.client.onStompError = (frame) => {
      this.frames.errors.push(frame);
      this.waiters.error.splice(0).forEach((w) => w(frame));
    };
    this.client.onWebSocketClose = (evt) => {
      this.frames.closes.push(evt);
      this.waiters.close.splice(0).forEach((w) => w(evt));
    };
  }

  async connect() {
    const connected = new Promise((resolve, reject) => {
      this.client.onConnect = (frame) => {
        this.frames.connected = frame;
        resolve(frame);
      };
      this.waiters.close.push((evt) => reject(new Error(`socket closed before CONNECTED (code ${evt.code})`)));
      this.waiters.error.push((frame) => reject(new Error(`ERROR before CONNECTED: ${frame.headers.message}`)));
    });
    this.client.activate();
    await within(WAIT_MS, connected, 'CONNECTED');
    this.waiters = { error: [], close: [] };
    return this;
  }

  /** Resolves with the next ERROR frame (or one that already arrived). */
  nextError(ms = WAIT_MS) {
    if (this.frames.errors.length) return Promise.resolve(this.frames.errors.shift());
    return within(
      ms,
      new Promise((resolve) => this.waiters.error.push(() => resolve(this.frames.errors.shift()))),
      'ERROR frame',
    );
  }

  /** Resolves when the WebSocket closed (or already had). */
  closed(ms = WAIT_MS) {
    if (this.frames.closes.length) return Promise.resolve(this.frames.closes[0]);
    return within(ms, new Promise((resolve) => this.waiters.close.push(resolve)), 'WebSocket close');
  }

  /** Subscribes and waits for the subscription's RECEIPT, so a following SEND is routed to it. */
  async subscribe(destination, headers = {}) {
    const inbox = new Inbox(destination);
    const receipt = `sub-${unique()}`;
    const got = this.receipt(receipt);
    inbox.subscription = this.client.subscribe(destination, (m) => inbox.push(m), { ...headers, receipt });
    await got;
    return inbox;
  }

  /** Publishes and waits for its RECEIPT (the message was routed); resolves with the RECEIPT. */
  async publish(params, ms = WAIT_MS) {
    const receipt = `pub-${unique()}`;
    const got = this.receipt(receipt, ms);
    this.client.publish({ ...params, headers: { ...(params.headers ?? {}), receipt } });
    return got;
  }

  /** A promise for RECEIPT `id`; register before sending the frame that carries it. */
  receipt(id, ms = WAIT_MS) {
    return within(ms, new Promise((resolve) => this.client.watchForReceipt(id, resolve)), `RECEIPT ${id}`);
  }

  /** DISCONNECT and wait for the socket to close; bounded, then forced. */
  async close() {
    try {
      await within(WAIT_MS, this.client.deactivate(), 'graceful deactivate');
    } catch {
      await this.client.deactivate({ force: true }).catch(() => {});
    }
  }

  /** Drops the socket without DISCONNECT, as a crashed tab would. */
  async drop() {
    const closed = this.closed();
    await this.client.deactivate({ force: true });
    await closed;
  }
}

/** Messages of one subscription, awaited one at a time with a timeout. */
export class Inbox {
  constructor(destination) {
    this.destination = destination;
    this.queue = [];
    this.waiters = [];
    this.subscription = null;
  }

  push(message) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(message);
    else this.queue.push(message);
  }

  next(ms = WAIT_MS) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    let waiter;
    const p = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return within(ms, p, `MESSAGE on ${this.destination}`).catch((err) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw err;
    });
  }

  /** Asserts nothing arrives for `ms`. */
  async none(ms = 400) {
    await sleep(ms);
    if (this.queue.length) {
      const m = this.queue[0];
      throw new Error(`unexpected MESSAGE on ${this.destination}: ${JSON.stringify(m.headers)} ${m.body}`);
    }
  }
}

/** Opens (and tracks for cleanup) connected clients against `broker`. */
export function clientPool(getBroker) {
  const open = [];
  return {
    async connect(options = {}) {
      const c = new TestClient(getBroker(), options);
      open.push(c);
      return c.connect();
    },
    async closeAll() {
      await Promise.all(open.splice(0).map((c) => c.close()));
    },
  };
}
