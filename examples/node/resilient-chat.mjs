// A chat client that survives its server: the reconnect pattern for Stompbox's chat application
// (docs/protocol.md, "Sync after reconnect"; docs/cluster-testing.md, "Coming back after a node
// dies").
//
// - Reconnect with exponential backoff and *full jitter*: the n-th consecutive retry waits a
//   uniform random time in [0, min(cap, base * 2^n)). When a node dies all its clients lose
//   their socket in the same millisecond; full jitter spreads their return over the window
//   instead of sending them back as one wave (and again as one wave at every doubling).
// - After every (re)connect: subscribe, then sync from the cursor (docs/protocol.md, "Sync
//   after reconnect"): per conversation, the last position the server has placed for us, plus
//   the ids we got live since (`seen`), which the server does not send again. Positions are
//   given in the order the store made messages visible, so syncing from exactly where we were
//   misses nothing, whatever the nodes' clocks: no rewind, no overlap to drop. (Ids are
//   Snowflakes ordered by each node's clock; syncing from "the largest id seen" could miss a
//   message stored later by a node whose clock is behind.) A message can still come both live
//   and in a replay when it arrives while the sync is being read: dropped here by messageId.
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

/** The cursor after a sync answer's: per conversation the larger position (never backwards). */
export function advance(cursor, answered = {}) {
  const next = { ...cursor };
  for (const [conversation, position] of Object.entries(answered)) {
    next[conversation] = Math.max(next[conversation] ?? 0, position);
  }
  return next;
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
    resendAfterMs = 10_000,
    onMessage = () => {},
    onPresence = () => {},
    onConversation = () => {},
    onError = () => {},
    beforeReconnect = async () => {},
  }) {
    Object.assign(this, { login, backoff, resendAfterMs });
    Object.assign(this, { onMessage, onPresence, onConversation, onError, beforeReconnect });
    this.lastId = '0'; // the largest id seen (for display; sync starts from the cursor)
    this.cursor = {}; // conversationId -> last position the server placed for us
    this.unplaced = new Set(); // ids got live past the cursor: sent as `seen` by the next sync
    this.ahead = new Map(); // conversationId -> Map(position -> id) got live past the cursor
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

  /** Syncs again on the live connection, from scratch (every message after `afterMessageId`
   * in every conversation, as if none were held); resolves when the replay ended. */
  resync(afterMessageId = '0') {
    const done = new Promise((resolve) => this.readyWaiters.push(resolve));
    this.synced = false;
    this.#publishSync({ cursor: {}, afterMessageId });
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
    this.#sync();
  }

  #onClose() {
    if (this.connected) this.drops += 1;
    this.connected = false;
    this.synced = false;
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }

  #sync() {
    this.#publishSync({ cursor: this.cursor, seen: [...this.unplaced] });
  }

  #publishSync(body) {
    this.client.publish({ destination: '/app/chat.sync', body: JSON.stringify(body) });
  }

  #onSync({ more, cursor, positions = {} }) {
    this.cursor = advance(this.cursor, cursor);
    for (const id of Object.keys(positions)) this.unplaced.delete(id);
    for (const conversationId of this.ahead.keys()) this.#closeUp(conversationId);
    if (more) return this.#sync();
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
    if (msg.seq !== undefined && msg.seq <= (this.cursor[msg.conversationId] ?? 0)) {
      // A replay (or a live copy the cursor already covers).
    } else {
      this.unplaced.add(msg.messageId); // live: placed by the next sync, or by its neighbours
      if (msg.seq !== undefined) {
        const ahead = this.ahead.get(msg.conversationId) ?? new Map();
        this.ahead.set(msg.conversationId, ahead.set(msg.seq, msg.messageId));
        this.#closeUp(msg.conversationId);
      }
    }
    if (BigInt(msg.messageId) > BigInt(this.lastId)) this.lastId = msg.messageId;
    this.onMessage(msg);
  }

  /** Moves a conversation's cursor over the positions got live right after it: only over
   * consecutive ones, since a message from another node can arrive after its successor. */
  #closeUp(conversationId) {
    const ahead = this.ahead.get(conversationId);
    if (!ahead) return;
    let at = this.cursor[conversationId] ?? 0;
    while (ahead.has(at + 1)) at += 1;
    for (const [position, id] of ahead) {
      if (position > at) continue;
      ahead.delete(position);
      this.unplaced.delete(id);
    }
    if (at > 0) this.cursor = { ...this.cursor, [conversationId]: at };
    if (ahead.size === 0) this.ahead.delete(conversationId);
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
