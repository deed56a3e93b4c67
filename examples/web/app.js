// The chat page: log in, conversations with presence dots, one-to-one and group chat with
// SENT/DELIVERED/READ ticks, typing indicator, history scroll-back, and reconnect with sync.
// Speaks the built-in chat contract of docs/protocol.md ("Chat"); no build step, no framework.

import { brokerUrls, connect } from './connection.js';

/** Typing stops being shown this long after the last "typing" event (senders repeat it). */
const TYPING_SHOWN_MS = 5000;
/** A pause this long in typing sends `typing:false`. */
const TYPING_IDLE_MS = 2500;
/** While typing goes on, `typing:true` is repeated this often, so it outlives TYPING_SHOWN_MS. */
const TYPING_REPEAT_MS = 3000;
const HISTORY_PAGE = 30;
const STATUS_RANK = { PENDING: 0, SENT: 1, DELIVERED: 2, READ: 3 };
const TICKS = { PENDING: '🕓', SENT: '✓', DELIVERED: '✓✓', READ: '✓✓' };

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);

const state = {
  me: null,
  client: null,
  /** conversationId -> { conv, messages: Map(messageId -> msg), unread, hasMore } */
  conversations: new Map(),
  open: null,
  /** userId -> 'online' | 'offline' */
  presence: new Map(),
  /** conversationId -> Map(userId -> timer) */
  typing: new Map(),
  /** my messageId -> Map(member -> status) */
  receipts: new Map(),
  /** clientMessageId -> pending message, until its RECEIPT names its id */
  pending: new Map(),
  /** The largest id seen: only while no cursor is stored (a page from before the cursor)
   * does sync start after it (docs/protocol.md, "Sync after reconnect"). */
  lastSeenId: '0',
  /** conversationId -> the last position (`seq`) the server placed for us; kept across pages. */
  cursor: {},
  /** ids got live past the cursor: sent as `seen` by the next sync, which places them. */
  unplaced: new Set(),
  /** conversationId -> Map(seq -> messageId) got live past the cursor, not yet consecutive. */
  ahead: new Map(),
  typingSent: false,
  typingSentAt: 0,
  typingTimer: null,
};

const bigger = (a, b) => BigInt(a) > BigInt(b);
const byId = (a, b) => (BigInt(a.messageId) < BigInt(b.messageId) ? -1 : 1);
const newId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
const lastSeenKey = () => `stompbox.lastSeen.${state.me}`;
const cursorKey = () => `stompbox.cursor.${state.me}`;

function publish(destination, body, headers = {}) {
  state.client.publish({ destination, headers, body: JSON.stringify(body) });
}

function entry(conversationId) {
  let e = state.conversations.get(conversationId);
  if (!e) {
    e = { conv: null, messages: new Map(), unread: 0, hasMore: true };
    state.conversations.set(conversationId, e);
  }
  return e;
}

function title(conv) {
  if (!conv) return '…';
  if (conv.type === 'DIRECT') return conv.members.find((m) => m !== state.me) ?? state.me;
  return conv.name || conv.members.join(', ');
}

/** The other member of a DIRECT conversation, whose presence its dot shows. */
const peer = (conv) => (conv?.type === 'DIRECT' ? conv.members.find((m) => m !== state.me) : null);

// --- incoming --------------------------------------------------------------------------------

function onChatMessage(frame) {
  const msg = JSON.parse(frame.body);
  frame.ack(); // = DELIVERED for the sender
  if (bigger(msg.messageId, state.lastSeenId)) {
    state.lastSeenId = msg.messageId;
    localStorage.setItem(lastSeenKey(), msg.messageId);
  }
  place(msg);
  addMessage(msg, true);
}

/** Where a message got on /user/queue/messages stands against the cursor: covered by it (a
 * replay), or live past it — then placed by the next sync, or by its neighbours. */
function place(msg) {
  if (msg.seq !== undefined && msg.seq <= (state.cursor[msg.conversationId] ?? 0)) return;
  state.unplaced.add(msg.messageId);
  if (msg.seq === undefined) return; // Kafka mode: the sink gives positions later
  const ahead = state.ahead.get(msg.conversationId) ?? new Map();
  state.ahead.set(msg.conversationId, ahead.set(msg.seq, msg.messageId));
  closeUp(msg.conversationId);
}

/** Moves a conversation's position over the messages got right after it: only over
 * consecutive ones, since a message from another node can arrive after its successor. */
function closeUp(conversationId) {
  const ahead = state.ahead.get(conversationId);
  if (!ahead) return;
  const from = state.cursor[conversationId] ?? 0;
  const positions = [...ahead.keys()].sort((a, b) => a - b).filter((p) => p > from);
  // The run from+1, from+2, ... as far as it goes unbroken.
  const run = positions.findIndex((p, i) => p !== from + 1 + i);
  const upTo = from + (run === -1 ? positions.length : run);
  for (const [position, id] of [...ahead].filter(([p]) => p <= upTo)) {
    state.unplaced.delete(id);
    ahead.delete(position);
  }
  if (upTo > 0) state.cursor[conversationId] = upTo;
  if (!ahead.size) state.ahead.delete(conversationId);
  localStorage.setItem(cursorKey(), JSON.stringify(state.cursor));
}

/** Adds a message (live, replayed or from history); `live` ones may be unread. */
function addMessage(msg, live) {
  const e = entry(msg.conversationId);
  if (!e.conv) publish('/app/conversation.list', {});
  if (msg.clientMessageId) state.pending.delete(msg.clientMessageId);
  if (e.messages.has(msg.messageId)) return; // live and replay overlap
  e.messages.set(msg.messageId, msg);
  if (msg.senderId === state.me) {
    if (!state.receipts.has(msg.messageId)) state.receipts.set(msg.messageId, new Map());
  } else if (live) {
    if (state.open === msg.conversationId && document.visibilityState === 'visible') markRead(msg.conversationId);
    else e.unread += 1;
  }
  render();
}

function onReceipt(frame) {
  const r = JSON.parse(frame.body);
  const e = state.conversations.get(r.conversationId);
  // READ is a watermark: everything of mine up to it is read by that member.
  const upTo = r.status === 'READ' ? (r.upToMessageId ?? r.messageId) : r.messageId;
  const ids = r.status === 'READ' && e
    ? [...e.messages.values()].filter((m) => m.senderId === state.me && !bigger(m.messageId, upTo)).map((m) => m.messageId)
    : [r.messageId];
  for (const id of ids) {
    const perMember = state.receipts.get(id) ?? new Map();
    if ((STATUS_RANK[r.status] ?? 0) > (STATUS_RANK[perMember.get(r.userId)] ?? 0)) perMember.set(r.userId, r.status);
    state.receipts.set(id, perMember);
  }
  render();
}

/** A message of mine shows the lowest status over the other members (all must have read it). */
function statusOf(msg) {
  const conv = state.conversations.get(msg.conversationId)?.conv;
  const perMember = state.receipts.get(msg.messageId) ?? new Map();
  const others = conv ? conv.members.filter((m) => m !== state.me) : [...perMember.keys()];
  if (others.length === 0) return 'SENT';
  let lowest = 'READ';
  for (const member of others) {
    const s = perMember.get(member) ?? 'SENT';
    if (STATUS_RANK[s] < STATUS_RANK[lowest]) lowest = s;
  }
  return lowest;
}

function onConversations(frame) {
  const body = JSON.parse(frame.body);
  const convs = body.conversations ?? (body.conversation ? [body.conversation] : []);
  for (const conv of convs) entry(conv.conversationId).conv = conv;
  const contacts = new Set(convs.flatMap((c) => c.members).filter((m) => m !== state.me));
  if (contacts.size) publish('/app/presence.query', { userIds: [...contacts] });
  render();
}

function onTyping(frame) {
  const t = JSON.parse(frame.body);
  const users = state.typing.get(t.conversationId) ?? new Map();
  clearTimeout(users.get(t.userId));
  if (t.typing) {
    users.set(t.userId, setTimeout(() => { users.delete(t.userId); render(); }, TYPING_SHOWN_MS));
  } else {
    users.delete(t.userId);
  }
  state.typing.set(t.conversationId, users);
  render();
}

function onPresence(frame) {
  const p = JSON.parse(frame.body);
  state.presence.set(p.userId, p.status);
  render();
}

function onSync(frame) {
  const { more, cursor = {}, positions = {} } = JSON.parse(frame.body);
  // Per conversation the larger position: a cursor never moves back.
  for (const [conversationId, position] of Object.entries(cursor)) {
    state.cursor[conversationId] = Math.max(state.cursor[conversationId] ?? 0, position);
  }
  for (const id of Object.keys(positions)) state.unplaced.delete(id);
  for (const conversationId of [...state.ahead.keys()]) closeUp(conversationId);
  localStorage.setItem(cursorKey(), JSON.stringify(state.cursor));
  if (more) sync();
}

function onHistory(frame) {
  const h = JSON.parse(frame.body);
  const e = entry(h.conversationId);
  e.hasMore = h.hasMore;
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  for (const msg of h.messages) addMessage(msg, false);
  render();
  list.scrollTop = list.scrollHeight - fromBottom; // keep the reader's place
}

function onError(frame) {
  const err = JSON.parse(frame.body);
  console.warn('chat error', err);
  if (err.clientMessageId) state.pending.delete(err.clientMessageId);
  render();
}

// --- outgoing --------------------------------------------------------------------------------

/** Syncs from the cursor: exact in a cluster whatever the nodes' clocks, no rewind. A page
 * from before the cursor (none stored) starts the conversations it names none of after the
 * largest id it saw, instead of replaying them whole. */
function sync() {
  const request = { cursor: state.cursor, seen: [...state.unplaced] };
  if (Object.keys(state.cursor).length === 0) request.afterMessageId = state.lastSeenId;
  publish('/app/chat.sync', request);
}

function markRead(conversationId) {
  const e = state.conversations.get(conversationId);
  const newest = [...e.messages.values()].filter((m) => m.senderId !== state.me).sort(byId).pop();
  e.unread = 0;
  if (newest) publish('/app/chat.read', { conversationId, messageId: newest.messageId });
}

function send(content) {
  const conversationId = state.open;
  const clientMessageId = newId();
  state.pending.set(clientMessageId, { conversationId, content, clientMessageId, senderId: state.me });
  // The RECEIPT comes once the message is durably stored: that is SENT.
  state.client.watchForReceipt(clientMessageId, (receipt) => {
    const pending = state.pending.get(clientMessageId);
    const messageId = receipt.headers['message-id'];
    if (pending && messageId) {
      addMessage({ ...pending, messageId, timestamp: new Date().toISOString() }, false);
    }
  });
  publish('/app/chat.send', { conversationId, content, clientMessageId }, { receipt: clientMessageId });
  setTyping(false);
  render();
}

function setTyping(typing) {
  clearTimeout(state.typingTimer);
  if (typing) state.typingTimer = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
  const repeat = typing && Date.now() - state.typingSentAt > TYPING_REPEAT_MS;
  if ((typing === state.typingSent && !repeat) || !state.open || !state.client?.connected) return;
  state.typingSent = typing;
  state.typingSentAt = Date.now();
  publish('/app/chat.typing', { conversationId: state.open, typing });
}

function olderPage() {
  const e = state.conversations.get(state.open);
  const first = [...e.messages.values()].sort(byId)[0];
  publish('/app/chat.history', {
    conversationId: state.open,
    limit: HISTORY_PAGE,
    ...(first ? { beforeMessageId: first.messageId } : {}),
  });
}

function openConversation(conversationId) {
  setTyping(false);
  state.open = conversationId;
  const e = entry(conversationId);
  if (e.messages.size < HISTORY_PAGE && e.hasMore) olderPage();
  markRead(conversationId);
  render();
  $('messages').scrollTop = $('messages').scrollHeight;
}

// --- rendering -------------------------------------------------------------------------------

function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.dataset, dataset);
  node.append(...children);
  return node;
}

function render() {
  const entries = [...state.conversations.entries()].filter(([, e]) => e.conv);
  const newest = (e) => [...e.messages.keys()].reduce((a, b) => (bigger(b, a) ? b : a), '0');
  entries.sort(([, a], [, b]) => (bigger(newest(a), newest(b)) ? -1 : 1));
  $('conversations').replaceChildren(...entries.map(([id, e]) => {
    const last = e.messages.get(newest(e));
    const other = peer(e.conv);
    return el('li', {
      className: 'conv',
      dataset: { id, name: title(e.conv) },
      onclick: () => openConversation(id),
      ariaSelected: String(state.open === id),
    },
    el('span', { className: 'dot', dataset: { presence: other ? (state.presence.get(other) ?? 'offline') : 'group' } }),
    el('span', { className: 'name' }, title(e.conv), el('span', { className: 'preview' }, last ? last.content : '')),
    el('span', { className: 'unread' }, e.unread ? String(e.unread) : ''));
  }));

  const e = state.open && state.conversations.get(state.open);
  $('composer').hidden = !e;
  if (!e) return;
  const other = peer(e.conv);
  $('conv-header').replaceChildren(
    el('span', { className: 'dot', dataset: { presence: other ? (state.presence.get(other) ?? 'offline') : 'group' } }),
    el('span', {}, title(e.conv)),
  );
  $('older').hidden = !e.hasMore;
  const pending = [...state.pending.values()].filter((p) => p.conversationId === state.open);
  const group = e.conv?.type === 'GROUP';
  const items = [...[...e.messages.values()].sort(byId), ...pending].map((m) => {
    const mine = m.senderId === state.me;
    const status = !m.messageId ? 'PENDING' : mine ? statusOf(m) : '';
    const time = m.timestamp ? new Date(m.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
    return el('li', { className: mine ? 'msg mine' : 'msg', dataset: { id: m.messageId ?? '', status } },
      group && !mine ? el('div', { className: 'from' }, m.senderId) : '',
      el('div', { className: 'text' }, m.content),
      el('div', { className: 'meta' }, time, mine ? el('span', { className: 'tick', title: status }, TICKS[status]) : ''));
  });
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  $('message-list').replaceChildren(...items);
  if (atBottom) list.scrollTop = list.scrollHeight;
  const typists = [...(state.typing.get(state.open)?.keys() ?? [])];
  $('typing').textContent = typists.length ? `${typists.join(', ')} ${typists.length > 1 ? 'are' : 'is'} typing…` : '';
}

function setStatus(stateName, text) {
  $('status').dataset.state = stateName;
  $('status').textContent = text;
}

// --- wiring ----------------------------------------------------------------------------------

function login(user, passcode) {
  state.me = user;
  state.lastSeenId = localStorage.getItem(lastSeenKey()) ?? '0';
  try {
    state.cursor = JSON.parse(localStorage.getItem(cursorKey()) ?? '{}') ?? {};
  } catch {
    state.cursor = {}; // unreadable: sync from the largest id seen, as before the cursor
  }
  $('login').hidden = true;
  $('chat').hidden = false;
  $('me-name').textContent = user;
  let transport = 'WebSocket';
  state.client = connect({
    login: user,
    passcode,
    transport: params.get('transport') ?? 'auto',
    // `?broker=https://chat.example.com`: a broker other than the one that served the page.
    urls: params.get('broker') ? brokerUrls(new URL(params.get('broker'))) : brokerUrls(),
    onTransport: (name) => { transport = name; },
    onConnect: () => {
      const c = state.client;
      // Replies go only to existing subscriptions: subscribe first, then ask.
      c.subscribe('/user/queue/messages', onChatMessage, { ack: 'client-individual' });
      c.subscribe('/user/queue/receipts', onReceipt);
      c.subscribe('/user/queue/conversations', onConversations);
      c.subscribe('/user/queue/typing', onTyping);
      c.subscribe('/user/queue/presence', onPresence);
      c.subscribe('/user/queue/sync', onSync);
      c.subscribe('/user/queue/history', onHistory);
      c.subscribe('/user/queue/errors', onError);
      publish('/app/conversation.list', {});
      sync();
      state.typingSent = false;
      setStatus('online', `online · ${transport}`);
    },
    onWebSocketClose: () => setStatus('offline', 'reconnecting…'),
    onStompError: (frame) => setStatus('offline', frame.headers.message),
  });
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  login($('login-user').value.trim(), $('login-pass').value);
});
$('new-direct').addEventListener('submit', (event) => {
  event.preventDefault();
  publish('/app/conversation.create', { type: 'DIRECT', members: [$('new-direct-user').value.trim()] });
  event.target.reset();
});
$('new-group').addEventListener('submit', (event) => {
  event.preventDefault();
  const members = $('new-group-members').value.split(',').map((m) => m.trim()).filter(Boolean);
  publish('/app/conversation.create', { type: 'GROUP', name: $('new-group-name').value.trim(), members });
  event.target.reset();
});
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('composer-text').value;
  if (text.trim()) send(text);
  $('composer-text').value = '';
});
$('composer-text').addEventListener('input', () => setTyping(true));
$('older').addEventListener('click', olderPage);
$('messages').addEventListener('scroll', () => {
  const e = state.open && state.conversations.get(state.open);
  if (e?.hasMore && $('messages').scrollTop === 0) olderPage();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.open) markRead(state.open);
});
if (params.get('user')) login(params.get('user'), params.get('pass') ?? '');
