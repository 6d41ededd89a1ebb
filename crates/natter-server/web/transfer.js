// File transfer over RTCDataChannels: one ordered channel per file and
// recipient, labelled `file:<id>`. The sender sends a JSON header (name,
// size, type, SHA-256 of the whole file), then the bytes in 16 KiB
// binary messages, pausing while the channel's buffer is above a high
// water mark. The recipient hashes what it received, answers with a
// JSON result, and the sender closes the channel.
//
// In an SFU room the channel is a RelayChannel (relay.js) through the
// server, one per file for all recipients: the same messages, each
// result telling its sender by the message event's `from`, and the
// buffer counting what the slowest recipient has not acknowledged.
//
// natter-client (crates/natter-client/src/transfer.rs) speaks the same
// protocol, plus `offset` in the header for a resumed transfer, which
// this side never asks for (docs/send.md).
//
// A Transfer emits `change` whenever its state or progress moves.

/** Bytes per data channel message: small enough for every SCTP stack. */
export const CHUNK_BYTES = 16 * 1024;
/** Stop queueing above this many buffered bytes ... */
const HIGH_WATER = 1024 * 1024;
/** ... and resume once the buffer has drained to this. */
const LOW_WATER = 256 * 1024;
/** Largest file a recipient accepts; it is held in memory. */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;
export const LABEL_PREFIX = 'file:';

export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class Transfer extends EventTarget {
  constructor({ id, direction, name, size, mime, peerName }) {
    super();
    this.id = id;
    /** 'send' or 'receive'. */
    this.direction = direction;
    this.name = name;
    this.size = size;
    this.mime = mime;
    /** The other side's name (receive), or the recipients' (send). */
    this.peerName = peerName;
    /** sending, sent, receiving, verified, mismatch or failed. */
    this.state = direction === 'send' ? 'sending' : 'receiving';
    this.done = 0;
    this.total = size;
    this.sha256 = null;
    /** The received file, once complete. */
    this.blob = null;
    this.detail = '';
  }

  set(changes) {
    Object.assign(this, changes);
    this.dispatchEvent(new Event('change'));
  }
}

function opened(channel) {
  if (channel.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    channel.addEventListener('open', () => resolve(), { once: true });
    channel.addEventListener('close', () => reject(new Error('channel closed before opening')), { once: true });
  });
}

function drained(channel) {
  return new Promise((resolve) => {
    const done = () => {
      channel.removeEventListener('bufferedamountlow', done);
      channel.removeEventListener('close', done);
      resolve();
    };
    channel.addEventListener('bufferedamountlow', done);
    channel.addEventListener('close', done);
    // It may have drained between the caller's check and now.
    if (channel.bufferedAmount <= channel.bufferedAmountLowThreshold) done();
  });
}

/**
 * Each recipient's result on `channel`: peer id → a promise of its
 * `{type: 'result', ok, sha256}`. A relay channel's messages name their
 * sender (`from`); a data channel's come from its one peer.
 */
function replies(channel, peers) {
  const pending = new Map();
  const results = new Map(
    peers.map((p) => [p.id, new Promise((resolve, reject) => pending.set(p.id, { resolve, reject, name: p.name }))]),
  );
  const settle = (id, how, value) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    p[how](value);
  };
  channel.addEventListener('message', (event) => {
    try {
      const message = JSON.parse(event.data);
      if (message.type === 'result') settle(event.from ?? peers[0].id, 'resolve', message);
    } catch {
      /* not ours */
    }
  });
  channel.addEventListener('recipientgone', ({ peer }) => settle(peer, 'reject', new Error(`${pending.get(peer)?.name} left`)));
  channel.addEventListener(
    'close',
    () => {
      for (const id of [...pending.keys()]) settle(id, 'reject', new Error('the recipient closed the channel'));
    },
    { once: true },
  );
  for (const r of results.values()) r.catch(() => {});
  return results;
}

/**
 * Sends `file` to every peer in `peers`: over its own data channel to
 * each, or over one channel of `relay` (an SFU room's) to all.
 * @param {File} file
 * @param {{id: string, name: string, pc: RTCPeerConnection | null}[]} peers
 * @param {import('./relay.js').Relay} [relay]
 * @returns {Transfer} at once; the transfer runs on.
 */
export function sendFile(file, peers, relay) {
  const transfer = new Transfer({
    id: crypto.randomUUID(),
    direction: 'send',
    name: file.name,
    size: file.size,
    mime: file.type || 'application/octet-stream',
    peerName: peers.map((p) => p.name).join(', '),
  });
  transfer.set({ total: file.size * peers.length });
  run(transfer, file, peers, relay).catch((e) => transfer.set({ state: 'failed', detail: String(e.message || e) }));
  return transfer;
}

async function run(transfer, file, peers, relay) {
  if (peers.length === 0) throw new Error('nobody else is in the room');
  const buffer = await file.arrayBuffer();
  const sha256 = await sha256Hex(buffer);
  transfer.set({ sha256 });
  const header = {
    type: 'file',
    id: transfer.id,
    name: transfer.name,
    size: transfer.size,
    mime: transfer.mime,
    sha256,
    chunkBytes: CHUNK_BYTES,
  };
  const acked = new Map(peers.map((p) => [p.id, 0]));
  const progress = (ids, n) => {
    for (const id of ids) acked.set(id, n);
    transfer.set({ done: [...acked.values()].reduce((a, b) => a + b, 0) });
  };
  const label = `${LABEL_PREFIX}${transfer.id}`;
  const legs = relay
    ? [{ channel: relay.createChannel(label, peers.map((p) => p.id)), peers }]
    : peers.map((peer) => ({ channel: peer.pc.createDataChannel(label, { ordered: true }), peers: [peer] }));
  const results = await Promise.allSettled(legs.flatMap(({ channel, peers }) => sendOn(channel, peers, header, buffer, progress)));
  const failed = results.filter((r) => r.status === 'rejected').length;
  const mismatched = results.filter((r) => r.status === 'fulfilled' && !r.value.ok).length;
  const verified = results.length - failed - mismatched;
  const detail = `verified by ${verified} of ${results.length}`;
  if (mismatched > 0) transfer.set({ state: 'mismatch', detail });
  else if (failed > 0) transfer.set({ state: 'failed', detail });
  else transfer.set({ state: 'sent', detail, done: transfer.total });
}

/**
 * Sends the header and the file's bytes on `channel` to `peers`, and
 * closes it once each has answered. One promise per peer, of `{ok}`.
 */
function sendOn(channel, peers, header, buffer, onProgress) {
  channel.binaryType = 'arraybuffer';
  channel.bufferedAmountLowThreshold = LOW_WATER;
  const ids = peers.map((p) => p.id);
  const results = replies(channel, peers);
  const size = buffer.byteLength;
  const sent = (async () => {
    await opened(channel);
    channel.send(JSON.stringify(header));
    let offset = 0;
    while (offset < size) {
      if (channel.bufferedAmount > HIGH_WATER) {
        await drained(channel);
        onProgress(ids, Math.max(0, offset - channel.bufferedAmount));
      }
      if (channel.readyState !== 'open') throw new Error(`the channel to ${peers.map((p) => p.name).join(', ')} closed`);
      const end = Math.min(offset + CHUNK_BYTES, size);
      channel.send(new Uint8Array(buffer, offset, end - offset));
      offset = end;
    }
  })();
  const answers = peers.map(async (peer) => {
    await sent;
    const answer = await results.get(peer.id);
    onProgress([peer.id], size);
    return { ok: answer.ok === true };
  });
  Promise.allSettled(answers).then(() => channel.close());
  return answers;
}

/**
 * Receives one file on `channel`, opened by `peer`.
 * @param {RTCDataChannel} channel
 * @param {{name: string}} peer
 * @param {(t: Transfer) => void} onStart called once the header is in
 */
export function receiveFile(channel, peer, onStart) {
  channel.binaryType = 'arraybuffer';
  let transfer = null;
  let chunks = [];
  let received = 0;
  const fail = (detail) => {
    if (transfer && transfer.state === 'receiving') transfer.set({ state: 'failed', detail });
    chunks = [];
    channel.close();
  };
  channel.addEventListener('message', async (event) => {
    if (!transfer) {
      let header;
      try {
        header = JSON.parse(event.data);
      } catch {
        return fail('bad header');
      }
      const valid =
        header &&
        header.type === 'file' &&
        typeof header.name === 'string' &&
        Number.isSafeInteger(header.size) &&
        header.size >= 0 &&
        header.size <= MAX_FILE_BYTES &&
        typeof header.sha256 === 'string' &&
        // Bytes from `offset` on (a resumed natter transfer): this side never asks for one.
        (header.offset === undefined || header.offset === 0);
      if (!valid) return fail('bad header');
      transfer = new Transfer({
        id: typeof header.id === 'string' ? header.id : crypto.randomUUID(),
        direction: 'receive',
        name: header.name.slice(0, 255) || 'file',
        size: header.size,
        mime: typeof header.mime === 'string' ? header.mime : 'application/octet-stream',
        peerName: peer.name,
      });
      transfer.expected = header.sha256.toLowerCase();
      onStart(transfer);
      if (header.size === 0) await finish();
      return;
    }
    if (!(event.data instanceof ArrayBuffer) || transfer.state !== 'receiving') return;
    received += event.data.byteLength;
    if (received > transfer.size) return fail(`more than the announced ${transfer.size} bytes`);
    chunks.push(event.data);
    transfer.set({ done: received });
    if (received === transfer.size) await finish();
  });
  channel.addEventListener('close', () => {
    if (transfer && transfer.state === 'receiving') transfer.set({ state: 'failed', detail: 'the sender went away' });
  });

  async function finish() {
    const blob = new Blob(chunks, { type: transfer.mime });
    chunks = [];
    const sha256 = await sha256Hex(await blob.arrayBuffer());
    const ok = sha256 === transfer.expected;
    transfer.set({ blob, sha256, state: ok ? 'verified' : 'mismatch', detail: ok ? 'verified' : 'checksum mismatch' });
    if (channel.readyState === 'open') channel.send(JSON.stringify({ type: 'result', ok, sha256 }));
  }
}
