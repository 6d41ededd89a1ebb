// The SFU's data channel relay (docs/signaling.md, "SFU rooms", 7): one
// data channel labelled `relay` on the connection to the server, whose
// messages are envelopes `[flags][n][peer id][payload]` (flags bit 0:
// text). The server puts the sender's id where we put the recipient's
// (empty: everyone else).
//
// On it this side runs channels of its own, each named by a label as
// an RTCDataChannel is, so that transfer.js sends and receives files
// over the relay as it does over a mesh's data channels: a payload is
// `[label length][label][data]`. A RelayChannel has the RTCDataChannel
// members transfer.js uses (label, readyState, bufferedAmount,
// bufferedAmountLowThreshold, binaryType, send, close; open, message,
// bufferedamountlow and close events; a message event also has `from`,
// the sender's id).
//
// A channel we open goes to everyone else at once (the server copies
// each message, so a file goes up once). The server holds at most
// 4 MiB for each recipient and drops what comes beyond: so the other
// end of a channel acknowledges what it received ({type: 'received',
// bytes}) every `acknowledgeBytes`, and our bufferedAmount counts what
// the slowest recipient has not acknowledged yet.
//
// Events of Relay: channel (detail: a RelayChannel someone else opened,
// on its first message).

/** The label of the one real data channel (natter-sfu relay::LABEL). */
export const RELAY_LABEL = 'relay';
/** Receivers acknowledge every this many bytes of a channel's binary data. */
export const ACKNOWLEDGE_BYTES = 128 * 1024;
const TEXT = 0x01;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Relay extends EventTarget {
  /** @param {RTCDataChannel} channel the `relay` channel, before its open */
  constructor(channel) {
    super();
    this.channel = channel;
    channel.binaryType = 'arraybuffer';
    /** `${peer}\n${label}` (peer empty for ours) → RelayChannel. */
    this.channels = new Map();
    channel.addEventListener('open', () => {
      for (const c of this.channels.values()) c.opened();
    });
    channel.addEventListener('close', () => {
      for (const c of [...this.channels.values()]) c.closed();
    });
    channel.addEventListener('message', (event) => this.receive(event.data));
    channel.addEventListener('bufferedamountlow', () => {
      for (const c of this.channels.values()) c.maybeLow();
    });
  }

  /**
   * Opens a channel to everyone in `recipients` (peer ids) but us.
   * @returns {RelayChannel}
   */
  createChannel(label, recipients) {
    const c = new RelayChannel(this, label, '', recipients);
    this.channels.set(`\n${label}`, c);
    return c;
  }

  /** `peer` left the room: its channels close, ours stop waiting for it. */
  gone(peer) {
    for (const c of [...this.channels.values()]) {
      if (c.readyState === 'closed') continue;
      if (c.peer === peer) c.closed();
      else if (c.acked.has(peer)) c.lost(peer);
    }
  }

  /** Sends `data` (string or bytes) on channel `label` to `peer` ('' for everyone). */
  write(peer, label, data) {
    const text = typeof data === 'string';
    const body = text ? encoder.encode(data) : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
    const to = encoder.encode(peer);
    const name = encoder.encode(label);
    const message = new Uint8Array(2 + to.length + 1 + name.length + body.length);
    message.set([text ? TEXT : 0, to.length]);
    message.set(to, 2);
    message[2 + to.length] = name.length;
    message.set(name, 3 + to.length);
    message.set(body, 3 + to.length + name.length);
    this.channel.send(message);
  }

  receive(data) {
    if (!(data instanceof ArrayBuffer) || data.byteLength < 3) return console.warn('natter: a short relay message');
    const bytes = new Uint8Array(data);
    const fromEnd = 2 + bytes[1];
    const nameEnd = fromEnd + 1 + (bytes[fromEnd] ?? 0);
    if (nameEnd > bytes.length) return console.warn('natter: a relay message overruns its header');
    const from = decoder.decode(bytes.subarray(2, fromEnd));
    const label = decoder.decode(bytes.subarray(fromEnd + 1, nameEnd));
    const body = bytes[0] & TEXT ? decoder.decode(bytes.subarray(nameEnd)) : data.slice(nameEnd);
    const ours = this.channels.get(`\n${label}`);
    if (ours) return ours.deliver(from, body);
    const key = `${from}\n${label}`;
    let c = this.channels.get(key);
    // A channel starts with text (a file's header): bytes of one we did
    // not see start (we joined during it, or closed it) are dropped.
    if (!c && typeof body !== 'string') return;
    if (!c) {
      c = new RelayChannel(this, label, from, []);
      c.acknowledgeBytes = ACKNOWLEDGE_BYTES;
      this.channels.set(key, c);
      this.dispatchEvent(new CustomEvent('channel', { detail: c }));
    }
    c.deliver(from, body);
  }

  forget(c) {
    this.channels.delete(`${c.peer}\n${c.label}`);
  }
}

export class RelayChannel extends EventTarget {
  constructor(relay, label, peer, recipients) {
    super();
    this.relay = relay;
    this.label = label;
    /** The other end: a peer id, or '' for a channel of ours to everyone. */
    this.peer = peer;
    this.binaryType = 'arraybuffer';
    this.readyState = peer || relay.channel.readyState === 'open' ? 'open' : 'connecting';
    this.bufferedAmountLowThreshold = 0;
    /** Binary bytes sent, and each recipient's acknowledged bytes. */
    this.sent = 0;
    this.acked = new Map(recipients.map((id) => [id, 0]));
    /** When set, we acknowledge every this many binary bytes received. */
    this.acknowledgeBytes = 0;
    this.received = 0;
  }

  get bufferedAmount() {
    const slowest = this.acked.size ? Math.min(...this.acked.values()) : this.sent;
    return Math.max(this.relay.channel.bufferedAmount, this.sent - slowest);
  }

  send(data) {
    if (this.readyState !== 'open') throw new DOMException(`relay channel ${this.label} is ${this.readyState}`, 'InvalidStateError');
    this.relay.write(this.peer, this.label, data);
    if (typeof data !== 'string') this.sent += data.byteLength;
  }

  close() {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    // Ours stay known, closed, so late acknowledgements are dropped.
    if (this.peer) this.relay.forget(this);
  }

  deliver(from, data) {
    if (this.readyState !== 'open') return;
    if (typeof data === 'string' && this.acked.has(from)) {
      let message = null;
      try {
        message = JSON.parse(data);
      } catch {
        /* theirs */
      }
      if (message?.type === 'received' && Number.isSafeInteger(message.bytes)) {
        this.acked.set(from, Math.max(this.acked.get(from), message.bytes));
        return this.maybeLow();
      }
    }
    const event = new MessageEvent('message', { data });
    event.from = from;
    this.dispatchEvent(event);
    if (typeof data !== 'string' && this.acknowledgeBytes > 0) {
      const before = Math.floor(this.received / this.acknowledgeBytes);
      this.received += data.byteLength;
      if (Math.floor(this.received / this.acknowledgeBytes) > before && this.readyState === 'open') {
        this.send(JSON.stringify({ type: 'received', bytes: this.received }));
      }
    }
  }

  maybeLow() {
    if (this.readyState === 'open' && this.bufferedAmount <= this.bufferedAmountLowThreshold) {
      this.dispatchEvent(new Event('bufferedamountlow'));
    }
  }

  /** A recipient left: it is no longer waited for. */
  lost(peer) {
    this.acked.delete(peer);
    this.dispatchEvent(Object.assign(new Event('recipientgone'), { peer }));
    this.maybeLow();
  }

  opened() {
    if (this.readyState !== 'connecting') return;
    this.readyState = 'open';
    this.dispatchEvent(new Event('open'));
  }

  closed() {
    if (this.readyState === 'closed') return;
    this.close();
    this.dispatchEvent(new Event('close'));
  }
}
