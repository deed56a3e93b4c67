// Resumable /topic subscriptions for @stomp/stompjs: remembers the last `offset` and `epoch`
// each subscription saw and, on every (re)connect, subscribes again with `resume-offset` and
// `resume-epoch`, so the broker replays what was missed (docs/protocol.md, "Resumable topics").
//
//   const topics = new ResumableTopics(client);          // before or after activate()
//   topics.subscribe('/topic/prices.eur', onMessage, {
//     onRecovered: (ok) => { if (!ok) reloadPrices(); }, // false: something was lost
//   });
//
// stompjs forgets subscriptions when the socket drops; this keeps them, in order of creation,
// and chains any `onConnect` the application set before it.

let receipts = 0;

export class ResumableTopics {
  /** @param {import('@stomp/stompjs').Client} client */
  constructor(client) {
    this.client = client;
    /** destination -> { onMessage, onRecovered, headers, epoch, offset, stomp } */
    this.topics = new Map();
    const previous = client.onConnect;
    client.onConnect = (frame) => {
      for (const entry of this.topics.values()) this.#open(entry);
      previous?.call(client, frame);
    };
  }

  /**
   * Subscribes to `destination` (now if connected, else on connect) and keeps it across
   * reconnects. `onRecovered(true|false)` is called after each resume: false means the broker
   * could not replay everything (history too short, broker restarted); reload from elsewhere.
   */
  subscribe(destination, onMessage, { onRecovered = () => {}, headers = {} } = {}) {
    const entry = { destination, onMessage, onRecovered, headers, epoch: null, offset: 0, stomp: null };
    this.topics.set(destination, entry);
    if (this.client.connected) this.#open(entry);
    return {
      /** The last position seen: what a resume starts from. */
      position: () => ({ epoch: entry.epoch, offset: entry.offset }),
      unsubscribe: () => {
        this.topics.delete(destination);
        if (this.client.connected) entry.stomp?.unsubscribe();
      },
    };
  }

  #open(entry) {
    const headers = { ...entry.headers };
    if (entry.epoch !== null) {
      const receipt = `resume-${++receipts}`;
      headers['resume-epoch'] = entry.epoch;
      headers['resume-offset'] = String(entry.offset);
      headers.receipt = receipt;
      this.client.watchForReceipt(receipt, (frame) => entry.onRecovered(frame.headers.recovered === 'true'));
    }
    entry.stomp = this.client.subscribe(entry.destination, (message) => this.#deliver(entry, message), headers);
  }

  #deliver(entry, message) {
    const { offset, epoch } = message.headers;
    if (offset !== undefined && epoch !== undefined) {
      const n = Number(offset);
      // Already seen: only possible if the application resubscribed by itself as well.
      if (epoch === entry.epoch && n <= entry.offset) return;
      entry.epoch = epoch;
      entry.offset = n;
    }
    entry.onMessage(message);
  }
}
