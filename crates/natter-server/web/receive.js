// receive.html: a browser receives a file from `natter send` by its code
// (`/receive.html#7-crimson-otter-maple`, or typed in the form). It joins
// the code's room as a mesh participant (peer.js), proves it knows the
// code as `natter receive` does, checks the sender's proof back, accepts
// the file from byte 0 and receives it with transfer.js; docs/send.md
// describes the protocol. The words never reach the server: the room is
// named after the number only.
//
// window.natterReceive holds the state for tests: `state` (idle,
// joining, proving, receiving, verified, mismatch or failed), `error`
// and the `transfer`.

import { Peer } from './peer.js';
import { Signaling } from './signaling.js';
import { LABEL_PREFIX, receiveFile } from './transfer.js';

/** The name `natter send` joins under, and ours (crates/natter-server/src/send/mod.rs). */
const SENDER_NAME = 'natter send';
const RECEIVER_NAME = 'natter receive';
/** RFC 8018 §5.2 PBKDF2-HMAC-SHA256 rounds, as send/code.rs. */
const PBKDF2_ROUNDS = 100000;
/** How long to wait for the server's welcome. */
const SENDER_WAIT_MS = 10000;
/** NUMBER-WORD-WORD-WORD; the sender tells a wrong word (its proof fails). */
const CODE_SHAPE = /^([1-9][0-9]{0,2})-([a-z]+)-([a-z]+)-([a-z]+)$/;

const $ = (id) => document.getElementById(id);
const status = {
  state: 'idle',
  error: null,
  transfer: null,
};
window.natterReceive = status;

function set(state, text) {
  status.state = state;
  $('receive-status').textContent = text;
}

function fail(message) {
  status.state = 'failed';
  status.error = message;
  $('receive-error').textContent = message;
  $('receive-button').disabled = false;
}

// ---- the code and its proofs (send/code.rs) ------------------------------------------

/** {room, words} of a typed code, or throws what is wrong with it. */
function parseCode(text) {
  const match = CODE_SHAPE.exec(text.trim().toLowerCase());
  if (!match) throw new Error('a code looks like 7-crimson-otter-maple: a number from 1 to 999 and three words');
  return { room: `send-${match[1]}`, words: match.slice(2).join('-') };
}

/** The HMAC-SHA256 key (RFC 2104): PBKDF2 of the words, salted with the room. */
async function proofKey({ room, words }) {
  const encoder = new TextEncoder();
  const password = await crypto.subtle.importKey('raw', encoder.encode(words), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: encoder.encode(`natter send v1 ${room}`), iterations: PBKDF2_ROUNDS },
    password,
    256,
  );
  return crypto.subtle.importKey('raw', bits, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

/**
 * What a proof signs: the role, then each field of `binding` after its length in bytes: the
 * sender's and the receiver's ids, then their DTLS certificate fingerprints as this side sees them.
 */
function transcript(role, binding) {
  const encoder = new TextEncoder();
  const fields = [binding.sender, binding.receiver, binding.senderFingerprint, binding.receiverFingerprint];
  return encoder.encode(fields.reduce((text, field) => `${text}\n${encoder.encode(field).length}:${field}`, role));
}

/**
 * {local, remote}: the DTLS certificate fingerprints of `pc`'s transport (`sha-256 AB:…`, as SDP
 * writes them), from getStats once connected; null before DTLS verified the remote one.
 */
async function dtlsFingerprints(pc) {
  const stats = [...(await pc.getStats()).values()];
  const transport = stats.find((s) => s.type === 'transport' && s.remoteCertificateId);
  const certificate = (id) => stats.find((s) => s.type === 'certificate' && s.id === id);
  const local = certificate(transport?.localCertificateId);
  const remote = certificate(transport?.remoteCertificateId);
  if (!local || !remote) return null;
  const text = (c) => `${c.fingerprintAlgorithm.toLowerCase()} ${c.fingerprint.toUpperCase()}`;
  return { local: text(local), remote: text(remote) };
}

/** Resolves once `pc` is connected (DTLS included); rejects if it fails. */
function connected(pc) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pc.connectionState === 'connected') resolve();
      else if (pc.connectionState === 'failed') reject(new Error('could not connect to the sender (ICE or DTLS failed)'));
      else return;
      pc.removeEventListener('connectionstatechange', check);
    };
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');

async function prove(key, role, binding) {
  return hex(await crypto.subtle.sign('HMAC', key, transcript(role, binding)));
}

/** Whether `proof` (hex) is `role`'s for `binding`; WebCrypto compares in constant time. */
async function check(key, role, binding, proof) {
  if (typeof proof !== 'string' || !/^[0-9a-f]{64}$/.test(proof)) return false;
  const bytes = new Uint8Array(proof.match(/../g).map((b) => parseInt(b, 16)));
  return crypto.subtle.verify('HMAC', key, bytes, transcript(role, binding));
}

// ---- receiving ----------------------------------------------------------------------

/** Joins the code's room, proves the code and receives the file. */
async function receive(text) {
  let code;
  try {
    code = parseCode(text);
  } catch (e) {
    return fail(e.message);
  }
  $('receive-error').textContent = '';
  $('receive-button').disabled = true;
  set('joining', 'Looking for the sender…');
  const keyReady = proofKey(code);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = new URLSearchParams(location.search).get('token') || undefined;
  const signaling = new Signaling({ url: `${scheme}//${location.host}/ws`, room: code.room, name: RECEIVER_NAME, token });
  let peer = null;
  let expected = null;
  const nameplate = code.room.slice('send-'.length);
  const giveUp = setTimeout(() => finish(`could not reach the server's room for code ${nameplate}-…`), SENDER_WAIT_MS);
  const finish = (error) => {
    clearTimeout(giveUp);
    peer?.close();
    signaling.leave();
    if (error) fail(error);
  };
  const on = (type, handler) => signaling.addEventListener(type, (e) => handler(e.detail));
  on('welcome', ({ id, peers, iceServers, fresh }) => {
    if (peer) return; // a resumed session
    const sender = (peers || []).find((p) => p.name === SENDER_NAME);
    if (!sender) return finish(`no sender is waiting on code ${nameplate}-… (is natter send still running?)`);
    clearTimeout(giveUp);
    peer = new Peer({
      id: sender.id,
      name: sender.name,
      polite: id < sender.id,
      initiator: fresh,
      config: { iceServers: iceServers || [], bundlePolicy: 'max-bundle' },
      signal: (message) => signaling.send(message),
      tracks: () => [],
      stream: new MediaStream(),
    });
    set('connecting', 'Connecting to the sender…');
    const bindingReady = connected(peer.pc)
      .then(() => dtlsFingerprints(peer.pc))
      .then((fingerprints) => {
        if (!fingerprints) throw new Error('connected to the sender, but DTLS verified no certificate');
        return { sender: sender.id, receiver: id, senderFingerprint: fingerprints.remote, receiverFingerprint: fingerprints.local };
      });
    Promise.all([keyReady, bindingReady])
      .then(([key, binding]) => {
        set('proving', 'Proving the code…');
        return prove(key, 'receiver', binding);
      })
      .then((proof) => peer.sendChat(JSON.stringify({ natterSend: 'hello', proof })))
      .catch((e) => finish(e.message));
    peer.addEventListener('chat', async ({ detail }) => {
      let message;
      try {
        message = JSON.parse(detail);
      } catch {
        return;
      }
      if (message?.natterSend === 'refused') return finish(`the sender refused: ${message.reason} (check the code)`);
      if (message?.natterSend !== 'offer' || expected) return;
      if (!(await check(await keyReady, 'sender', await bindingReady, message.proof))) {
        return finish('the sender could not prove it knows the code; nothing was received');
      }
      expected = { id: crypto.randomUUID(), name: message.name, size: message.size, sha256: message.sha256 };
      peer.sendChat(JSON.stringify({ natterSend: 'accept', id: expected.id, offset: 0 }));
      set('receiving', `Receiving ${message.name}…`);
    });
    peer.addEventListener('channel', ({ detail: channel }) => {
      if (!expected || channel.label !== `${LABEL_PREFIX}${expected.id}`) return channel.close();
      receiveFile(channel, peer, (transfer) => {
        status.transfer = transfer;
        $('receive-progress').hidden = false;
        transfer.addEventListener('change', () => onChange(transfer, expected, channel, finish));
      });
    });
  });
  for (const type of ['offer', 'answer', 'candidate']) {
    on(type, (message) => {
      if (peer && message.from === peer.id) peer.handle(message);
    });
  }
  on('peer-left', ({ id }) => {
    if (peer && id === peer.id && status.state !== 'verified') finish('the sender left before the file was complete');
  });
  on('fatal', ({ code: closeCode, reason }) => finish(`the server refused: ${reason || closeCode}`));
  signaling.start();
}

function onChange(transfer, expected, channel, finish) {
  $('receive-progress').value = transfer.size ? transfer.done / transfer.size : 1;
  if (transfer.state === 'receiving') return;
  // The channel's header must describe the file the sender offered.
  const offered = transfer.expected === expected.sha256 && transfer.size === expected.size;
  if (transfer.state === 'verified' && offered) {
    const link = $('receive-link');
    link.href = URL.createObjectURL(transfer.blob);
    link.download = transfer.name;
    link.textContent = `Save ${transfer.name}`;
    link.hidden = false;
    set('verified', `${transfer.name}: ${transfer.size} bytes, SHA-256 verified`);
    // transfer.js sends the result next; the sender closes the channel once it has it.
    channel.addEventListener('close', () => finish(), { once: true });
  } else {
    finish(`${transfer.name}: ${offered ? transfer.detail || transfer.state : 'not the file the sender offered'}`);
    status.state = transfer.state === 'verified' ? 'mismatch' : transfer.state;
  }
}

$('receive-form').addEventListener('submit', (event) => {
  event.preventDefault();
  receive($('receive-code').value);
});
const fromUrl = decodeURIComponent(location.hash.slice(1));
if (fromUrl) {
  $('receive-code').value = fromUrl;
  receive(fromUrl);
}
