// The chat workload of the cluster tests and the check of what every member ended up with.
//
// Users 2k and 2k+1 chat one-on-one (by recipientId); consecutive runs of `groupSize` users
// share a group. Every user sends its messages one at a time, alternating between its partner
// and its group, each with a clientMessageId, and waits for the RECEIPT (sent by the server
// only once the message is stored) before the next: the ledger is the list of acknowledged
// messages, in each sender's send order.
//
// What "every acknowledged message exactly once, in order per conversation" means here, for
// every member of every conversation, over what the member's client kept (live deliveries and
// sync replays merged, copies dropped by messageId):
// - complete: every acknowledged message of the conversation is there;
// - exactly once: nothing else is there (a second stored copy of a retried send would be a
//   message with another id), and each copy's sender, clientMessageId and content match;
// - in order: listed by ascending message id — the order the server defines — a conversation
//   reads the same for every member, and each sender's messages appear in the order it sent
//   them (their ids ascend in send order, across a reconnect to another node too).

import { sleep } from './harness.mjs';

/** Connects users a batch at a time (a debug build on two cores does not like 300 at once). */
export async function connectAll(users, batch = 50) {
  for (let i = 0; i < users.length; i += batch) {
    await Promise.all(users.slice(i, i + batch).map((u) => u.chat.start()));
  }
}

/** Pairs and groups over `users`; returns the conversations keyed for the ledger. */
export function plan(users, groupSize) {
  const conversations = new Map();
  for (let i = 0; i + 1 < users.length; i += 2) {
    conversations.set(`p${i / 2}`, { members: [users[i], users[i + 1]], direct: true });
  }
  for (let g = 0; g * groupSize < users.length; g += 1) {
    const members = users.slice(g * groupSize, (g + 1) * groupSize);
    if (members.length > 1) conversations.set(`g${g}`, { members, direct: false });
  }
  for (const [key, c] of conversations) {
    for (const u of c.members) (u.keys ??= []).push(key);
  }
  return conversations;
}

/** Creates the groups (their creator waits for its own `created` event to learn the id). */
export async function createGroups(conversations, tag) {
  const groups = [...conversations.entries()].filter(([, c]) => !c.direct);
  await Promise.all(
    groups.map(async ([key, c]) => {
      const [creator, ...others] = c.members;
      const name = `${tag}-${key}`;
      await creator.chat.request('conversation.create', {
        type: 'GROUP',
        name,
        members: others.map((u) => u.login),
      });
      for (let waited = 0; !c.conversationId; waited += 50) {
        const event = creator.conversations.find((e) => e.conversation?.name === name);
        if (event) c.conversationId = event.conversation.conversationId;
        else if (waited > 10_000) throw new Error(`no created event for group ${name}`);
        else await sleep(50);
      }
    }),
  );
}

/** The SEND body that reaches conversation `key` from `user`. */
function target(user, key, conversations) {
  const c = conversations.get(key);
  if (!c.direct) return { conversationId: c.conversationId };
  return { recipientId: c.members.find((m) => m !== user).login };
}

/**
 * Sends `count` messages from `user`, alternating over its conversations, `gapMs` apart
 * (uniformly random in [min, max]); appends each acknowledged one to `ledger`.
 */
export async function chatLoop(user, conversations, ledger, { count, gapMs: [min, max], first = 0 }) {
  for (let seq = first; seq < first + count; seq += 1) {
    await sleep(min + Math.random() * (max - min));
    const key = user.keys[seq % user.keys.length];
    const content = `${user.login} #${seq} to ${key}`;
    const sentAt = Date.now();
    const ack = await user.chat.send({ ...target(user, key, conversations), content });
    ledger.push({ ...ack, key, sender: user.login, seq, content, sentAt, ackedAt: Date.now() });
  }
}

/** What is wrong with what members hold, per the rules at the top of this file. */
export function check(conversations, ledger) {
  const byId = new Map(ledger.map((e) => [e.messageId, e]));
  const problems = { missing: [], extra: [], mismatched: [], senderOrder: [], idReused: [] };
  if (byId.size !== ledger.length) problems.idReused.push(`${ledger.length - byId.size} acks share an id`);
  const byKey = new Map();
  for (const e of ledger) (byKey.get(e.key) ?? byKey.set(e.key, []).get(e.key)).push(e);
  for (const [key, entries] of byKey) {
    const bySender = new Map();
    for (const e of entries) (bySender.get(e.sender) ?? bySender.set(e.sender, []).get(e.sender)).push(e);
    for (const [sender, list] of bySender) {
      list.sort((a, b) => a.seq - b.seq);
      for (let i = 1; i < list.length; i += 1) {
        if (BigInt(list[i].messageId) <= BigInt(list[i - 1].messageId)) {
          problems.senderOrder.push(`${key} ${sender} #${list[i].seq} id ${list[i].messageId} <= #${list[i - 1].seq}`);
        }
      }
    }
    for (const member of conversations.get(key).members) {
      for (const e of entries) {
        const got = member.chat.seen.get(e.messageId);
        if (!got) {
          problems.missing.push(
            `${member.login} (dropped ${member.chat.drops}x) lacks ${e.messageId} (${e.content}, ` +
              `${e.tries} ${e.tries === 1 ? 'try' : 'tries'}, acknowledged at ${new Date(e.ackedAt).toISOString()})`,
          );
        }
        else if (got.senderId !== e.sender || got.content !== e.content || got.clientMessageId !== e.clientMessageId) {
          problems.mismatched.push(`${member.login} ${e.messageId}: ${JSON.stringify(got)}`);
        }
      }
    }
  }
  const members = new Set([...conversations.values()].flatMap((c) => c.members));
  for (const member of members) {
    for (const [id, m] of member.chat.seen) {
      if (!byId.has(id)) problems.extra.push(`${member.login} holds unacknowledged ${id} (${m.content})`);
    }
  }
  return problems;
}

/**
 * The cluster tests' chat: connects `users`, makes their conversations, sends one 1:1 message
 * per pair first (so every DIRECT conversation, and with it presence contacts, exists), then
 * starts every user's loop of `count` messages `gapMs` apart. `total`: the ledger's length once
 * every loop is done.
 */
export async function startChat(users, tag, { groupSize, count, gapMs }) {
  await connectAll(users);
  const conversations = plan(users, groupSize);
  await createGroups(conversations, tag);
  const ledger = [];
  await Promise.all(users.filter((_, i) => i % 2 === 0).map((u) => chatLoop(u, conversations, ledger, { count: 1, gapMs: [0, 200] })));
  const total = ledger.length + users.length * count;
  const running = users.map((u) => chatLoop(u, conversations, ledger, { count, gapMs, first: 1 }));
  return { conversations, ledger, total, running };
}

/** Waits until `done()` holds; throws as soon as one of `running` rejects, or after `ms`. */
export async function until(done, running, ms, what) {
  let failure;
  for (const p of running) p.catch((err) => (failure ??= err));
  const deadline = Date.now() + ms;
  while (!done()) {
    if (failure) throw failure;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(50);
  }
}

/** Polls `check` until nothing is missing or `ms` passed; returns the last result. */
export async function settle(conversations, ledger, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const problems = check(conversations, ledger);
    if (problems.missing.length === 0 || Date.now() > deadline) return problems;
    await sleep(250);
  }
}

/** A short, readable summary for an assertion message. */
export function summary(problems) {
  return Object.entries(problems)
    .filter(([, list]) => list.length)
    .map(([kind, list]) => `${kind}: ${list.length} (e.g. ${list.slice(0, 3).join('; ')})`)
    .join('\n');
}
