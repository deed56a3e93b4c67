// A chat client that survives its server: the reconnect pattern for Stompbox's chat application
// (docs/protocol.md, "Sync after reconnect"; docs/cluster-testing.md, "Coming back after a node
// dies").
//
// - Reconnect with exponential backoff and *full jitter*: the n-th consecutive retry waits a
//   uniform random time in [0, min(cap, base * 2^n)). When a node dies all its clients lose
//   their socket in the same millisecond; full jitter spreads their return over the window
//   instead of sending them back as one wave (and again as one wave at every doubling).
// - After every (re)connect: subscribe, then sync from the last message id seen, rewound by
//   `syncOverlapMs`. Ids are Snowflakes (milliseconds << 22 | node << 12 | sequence), so ids of
//   *different* nodes are ordered by their clocks, not by when each message reached you: a
//   message from a slow node can arrive after a newer one from a fast node. Syncing from a
//   little before the last id closes that window; the overlap comes back as duplicates, dropped
//   here by messageId.
// - Sends carry a clientMessageId and are kept until their RECEIPT (which the server sends only
//   after the message is stored). Unacknowledged sends are sent again, with the same
//   clientMessageId, after the next sync: the server answers a retry with the original id and
//   stores nothing twice, so "resend until acknowledged" is safe.
//
// Bring your stomp.js: pass `Client` from '@stomp/stompjs', and in Node a `WebSocket` class
// (the `ws` package); browsers have one built in. examples/node/chat-demo.mjs runs it.

/** Consecutive-failure backoff with full jitter; `attempt` 0 is the first retry. */
export function fullJitter(attempt, { baseMs, capMs }, random = Math.random) {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30)));
}

/** Bits below a Snowflake's millisecond field (10 node bits + 12 sequence bits). */
const TIME_SHIFT = 22n;

/** `id` moved back by `ms` milliseconds of Snowflake time (never below 0). */
export function rewind(id, ms) {
  const earlier = BigInt(id) - (BigInt(ms) << TIME_SHIFT);
  return earlier > 0n ? earlier.toString() : '0';
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class ResilientChat {
  /**
   * @param {object} o
   * @param {Function} o.Client stomp.js Client class
   * @param {Function} [o.WebSocket] WebSocket class (Node); omitted in browsers
   * @param {string | (() => string)} o.url ws:// URL of the load balancer (or a function)
   * @param {string} o.login user name (dev mode) or login
   */
  constructor({
    Client,
    WebSocket,
    url,
    login,
    passcode = '',
    backoff = { baseMs: 250, capMs: 8000 },
    heartbeat = { outgoing: 10_000, incoming: 10_000 },
    syncOverlapMs = 5000,
    resendAfterMs = 10_000,
    onMessage = () => {},
    onPresence = () => {},
    onConversation = () => {},
    onError = () => {},
    beforeReconnect = async () => {},
  }) {
    Object.assign(this, { login, backoff, syncOverlapMs, resendAfterMs });
    Object.assign(this, { onMessage, onPresence, onConversation, onError, beforeReconnect });
    this.lastId = '0';
    this.seen = new Map(); // messageId -> message: what the application has shown
    this.duplicates = 0; // copies dropped (sync overlapping live delivery)
    this.pending = new Map(); // clientMessageId -> { body, resolve, reject, tries, timer }
    this.connects = 0;
    this.drops = 0;
    this.synced = false;
    this.failures = 0; // consecutive failed connection attempts
    this.started = false;
    this.sendSeq = 0;
    this.readyWaiters = [];
    const target = () => (typeof url === 'function' ? url() : url);
    this.client = new Client({
      ...(WebSocket
        ? { webSocketFactory: () => new WebSocket(target(), ['v12.stomp']) }
        : { brokerURL: target() }),
      connectHeaders: { login, passcode },
      heartbeatIncoming: heartbeat.incoming,
      heartbeatOutgoing: heartbeat.outgoing,
      // stomp.js schedules the retry; the wait itself (backoff + jitter) is in beforeConnect.
      reconnectDelay: 1,
      connectionTimeout: 5000,
      debug: () => {},
      beforeConnect: () => this.#beforeConnect(),
      onConnect: () => this.#onConnect(),
      onWebSocketClose: () => this.#onClose(),
      onStompError: (frame) => this.onError({ code: 'STOMP_ERROR', message: frame.headers.message }),
    });
  }

  /** Connects; resolves after the first sync completed. */
  start() {
    this.client.activate();
    return this.ready();
  }

  async stop() {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    await this.client.deactivate();
  }

  /** Resolves once connected and synced (at once when already). */
  ready() {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Sends until acknowledged; resolves with `{ messageId, clientMessageId, tries }`. */
  send(body) {
    const clientMessageId = `${this.login}-${Date.now().toString(36)}-${(this.sendSeq += 1)}`;
    return new Promise((resolve, reject) => {
      this.pending.set(clientMessageId, { body: { ...body, clientMessageId }, resolve, reject, tries: 0 });
      if (this.synced) this.#publishSend(clientMessageId);
    });
  }

  /** One SEND to /app/<action> with a receipt (not retried: for setup calls). */
  request(action, body, ms = 10_000) {
    return new Promise((resolve, reject) => {
      const receipt = `req-${action}-${(this.sendSeq += 1)}`;
      const timer = setTimeout(() => reject(new Error(`${this.login}: no RECEIPT for ${action}`)), ms);
      this.client.watchForReceipt(receipt, (frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
      this.client.publish({ destination: `/app/${action}`, headers: { receipt }, body: JSON.stringify(body) });
    });
  }

  /** Syncs again from `afterMessageId` on the live connection; resolves when the replay ended. */
  resync(afterMessageId = '0') {
    const done = new Promise((resolve) => this.readyWaiters.push(resolve));
    this.synced = false;
    this.#sync(afterMessageId);
    return done;
  }

  async #beforeConnect() {
    if (!this.started) {
      this.started = true; // the very first attempt goes at once
      return;
    }
    await this.beforeReconnect(this);
    await sleep(fullJitter(this.failures, this.backoff));
    this.failures += 1; // reset by onConnect
  }

  #onConnect() {
    this.connects += 1;
    this.failures = 0;
    this.connected = true;
    const json = (handler) => (m) => handler(JSON.parse(m.body));
    this.client.subscribe('/user/queue/messages', json((msg) => this.#onMessage(msg)));
    this.client.subscribe('/user/queue/presence', json((p) => this.onPresence(p)));
    this.client.subscribe('/user/queue/conversations', json((c) => this.onConversation(c)));
    this.client.subscribe('/user/queue/errors', json((e) => this.#onAppError(e)));
    this.client.subscribe('/user/queue/sync', json((s) => this.#onSync(s)));
    // Frames on one connection are handled in order: the subscriptions exist before the sync.
    this.#sync(rewind(this.lastId, this.syncOverlapMs));
  }

  #onClose() {
    if (this.connected) this.drops += 1;
    this.connected = false;
    this.synced = false;
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }

  #sync(afterMessageId) {
    this.client.publish({ destination: '/app/chat.sync', body: JSON.stringify({ afterMessageId }) });
  }

  #onSync({ upToMessageId, more }) {
    if (more) return this.#sync(upToMessageId);
    this.synced = true;
    for (const id of this.pending.keys()) this.#publishSend(id);
    this.readyWaiters.splice(0).forEach((resolve) => resolve());
  }

  #onMessage(msg) {
    if (this.seen.has(msg.messageId)) {
      this.duplicates += 1;
      return;
    }
    this.seen.set(msg.messageId, msg);
    if (BigInt(msg.messageId) > BigInt(this.lastId)) this.lastId = msg.messageId;
    this.onMessage(msg);
  }

  #publishSend(clientMessageId) {
    const p = this.pending.get(clientMessageId);
    if (!p) return;
    p.tries += 1;
    const receipt = `${clientMessageId}#${p.tries}`;
    clearTimeout(p.timer);
    // Stored but the RECEIPT never came (a slow or dying node): the same clientMessageId again.
    p.timer = setTimeout(() => this.synced && this.#publishSend(clientMessageId), this.resendAfterMs);
    this.client.watchForReceipt(receipt, (frame) => {
      if (!this.pending.delete(clientMessageId)) return;
      clearTimeout(p.timer);
      p.resolve({ messageId: frame.headers['message-id'], clientMessageId, tries: p.tries });
    });
    this.client.publish({ destination: '/app/chat.send', headers: { receipt }, body: JSON.stringify(p.body) });
  }

  #onAppError(error) {
    const p = error.clientMessageId && this.pending.get(error.clientMessageId);
    if (p && ['RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL'].includes(error.code)) {
      clearTimeout(p.timer);
      p.timer = setTimeout(() => this.synced && this.#publishSend(error.clientMessageId), 200 + Math.random() * 800);
    } else if (p) {
      this.pending.delete(error.clientMessageId);
      clearTimeout(p.timer);
      p.reject(new Error(`${error.code}: ${error.message}`));
    } else {
      this.onError(error);
    }
  }
}
