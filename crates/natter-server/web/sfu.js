// The one RTCPeerConnection of an SFU room (docs/signaling.md, "SFU
// rooms"): to the peer id `sfu`, offered once with what we publish and a
// fixed pool of receive slots (at most POOL of each kind, however large
// the room); the server answers, never renegotiates, and says with
// `track` messages which slot carries whose track: the latest active
// speakers', then the first joiners'.
//
// The camera goes out as three simulcast layers (RFC 8853; WebRTC 1.0
// §5.2 sendEncodings), lowest first as the protocol asks: the server
// forwards one of them to each subscriber.
//
// Dynacast: a `layers` message names the RIDs of our camera that
// anyone receives; the others' encodings are set inactive
// (RTCRtpSender.setParameters), so Chromium stops encoding them until a
// later message lists them again.
//
// Each tile's rendered size goes to the server as `tile` messages (a
// ResizeObserver on the videos showing our slots' tracks, at most one
// report per TILE_EVERY_MS), so it forwards no larger a layer.
//
// Files go over the server's data channel relay (relay.js): its one
// `relay` channel is created before the offer, so the offer carries an
// m=application section too.
//
// Events: slot (detail: {peer, kind, track, previous}: the slot's
// receiving track now belongs to `peer`, or to nobody when `peer` is
// null; `previous` is whom it carried before), connection (detail:
// pc.connectionState).

import { Relay, RELAY_LABEL } from './relay.js';
import { delta } from './stats.js';

/** The server's peer id. */
export const SFU_PEER = 'sfu';

/** Simulcast layers of the camera, lowest first: quarter, half, full size. */
export const LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4 },
  { rid: 'h', scaleResolutionDownBy: 2 },
  { rid: 'f', scaleResolutionDownBy: 1 },
];

/**
 * Receive slots of each kind at most: a 3 by 3 grid of videos (each a
 * decoder: 49 of them do not fit a laptop, nor 2 cores) and the five
 * latest speakers' audio. docs/signaling.md says why.
 */
export const POOL = { audio: 5, video: 9 };

/** Tile sizes are sent at most this often (a resize fires per frame). */
const TILE_EVERY_MS = 250;
/** The largest tile side the protocol takes (RFC 6386 §9.1's 14 bits). */
const MAX_TILE_PIXELS = 0x3fff;

/**
 * Sets each encoding of `sender` active when its RID is in `active`.
 * Another setParameters in between (a page capping a layer's bitrate)
 * makes ours fail with InvalidStateError or InvalidModificationError
 * (its transaction is stale): read the parameters again and retry.
 */
async function setActiveLayers(sender, active) {
  for (let attempt = 1; ; attempt++) {
    const parameters = sender.getParameters();
    if (parameters.encodings.every((e) => e.active === active.has(e.rid))) return;
    for (const encoding of parameters.encodings) encoding.active = active.has(encoding.rid);
    try {
      await sender.setParameters(parameters);
      return;
    } catch (e) {
      if (attempt >= 3 || !['InvalidStateError', 'InvalidModificationError'].includes(e.name)) throw e;
    }
  }
}

export class SfuConnection extends EventTarget {
  /**
   * @param {object} o
   * @param {RTCConfiguration} o.config
   * @param {(message: object) => void} o.signal sends a signaling message
   * @param {MediaStreamTrack | undefined} o.audio the microphone, if any
   * @param {MediaStreamTrack | undefined} o.video the camera, if any
   * @param {MediaStream} o.stream the stream the tracks belong to
   * @param {number} o.slots the others in a full room: receive slots of each kind, up to POOL
   */
  constructor({ config, signal, audio, video, stream, slots }) {
    super();
    this.signal = signal;
    this.pc = new RTCPeerConnection(config);
    /** mid → {kind, peer} of each receive slot, as `track` messages set it. */
    this.slots = new Map();
    /** Our sender of each kind ('audio', 'video'). */
    this.senders = new Map();
    /** Signaling messages are handled one at a time, after our offer. */
    this.queue = Promise.resolve();
    this.closed = false;
    /** peer → audio counters of the previous audioLevels(). */
    this.lastAudio = new Map();
    /** mid → the `WxH` last sent in a `tile` message. */
    this.tileSent = new Map();
    /** The videos whose size we watch, and the pending report's timer. */
    this.watched = new Set();
    this.tileTimer = null;
    this.resizes = new ResizeObserver(() => this.scheduleTiles());

    const pc = this.pc;
    pc.addEventListener('icecandidate', ({ candidate }) => {
      // The ICE-lite server ignores them (its peers' checks bring the
      // addresses), but the protocol lets a client send them.
      this.signal({ type: 'candidate', to: SFU_PEER, candidate: candidate ? candidate.toJSON() : null });
    });
    pc.addEventListener('connectionstatechange', () => this.emit('connection', pc.connectionState));

    if (audio) this.senders.set('audio', pc.addTransceiver(audio, { direction: 'sendonly', streams: [stream] }).sender);
    if (video) {
      const sendEncodings = LAYERS.map((l) => ({ ...l }));
      this.senders.set('video', pc.addTransceiver(video, { direction: 'sendonly', streams: [stream], sendEncodings }).sender);
    }
    for (const kind of ['audio', 'video']) {
      for (let i = 0; i < Math.min(slots, POOL[kind]); i++) pc.addTransceiver(kind, { direction: 'recvonly' });
    }
    /** Data to and from the others, through the server (docs/signaling.md). */
    this.relay = new Relay(pc.createDataChannel(RELAY_LABEL, { ordered: true }));
    this.queue = this.offer();
  }

  async offer() {
    await this.pc.setLocalDescription();
    for (const t of this.pc.getTransceivers()) {
      if (t.direction === 'recvonly') this.slots.set(t.mid, { kind: t.receiver.track.kind, peer: null });
    }
    this.signal({ type: 'offer', to: SFU_PEER, sdp: this.pc.localDescription.sdp });
  }

  /**
   * The signaling session was resumed on a new socket. An offer still
   * waiting for its answer may have gone down with the old one (a socket
   * that died unnoticed takes what was written to it, and the server
   * replays only what it sent), so it goes again; the server answers a
   * repeated offer as a renegotiation, and `apply` drops an answer to an
   * offer already answered.
   */
  resumed() {
    this.queue = this.queue.then(() => {
      if (this.closed || this.pc.signalingState !== 'have-local-offer') return;
      this.signal({ type: 'offer', to: SFU_PEER, sdp: this.pc.localDescription.sdp });
    });
  }

  /** An `answer`, `candidate`, `track` or `layers` message from the server. */
  handle(message) {
    this.queue = this.queue.then(() => this.apply(message)).catch((e) => {
      console.warn(`natter: ${message.type} from the SFU failed`, e);
    });
    return this.queue;
  }

  async apply(message) {
    if (this.closed) return;
    const pc = this.pc;
    if (message.type === 'answer') {
      // The second answer to an offer sent again after a resume.
      if (pc.signalingState !== 'have-local-offer') return;
      await pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
    } else if (message.type === 'candidate') {
      if (message.candidate) await pc.addIceCandidate(message.candidate);
      else await pc.addIceCandidate().catch(() => {});
    } else if (message.type === 'track') {
      const slot = this.slots.get(message.mid);
      const transceiver = pc.getTransceivers().find((t) => t.mid === message.mid);
      if (!slot || !transceiver) throw new Error(`no receive slot with mid ${message.mid}`);
      const previous = slot.peer;
      slot.peer = message.peer;
      this.emit('slot', { peer: message.peer, kind: slot.kind, track: transceiver.receiver.track, previous });
      this.scheduleTiles();
    } else if (message.type === 'layers') {
      const sender = pc.getTransceivers().find((t) => t.mid === message.mid)?.sender;
      if (!sender) throw new Error(`no send section with mid ${message.mid}`);
      await setActiveLayers(sender, new Set(message.active));
    } else {
      // The server never offers (it does not renegotiate).
      console.warn(`natter: unexpected ${message.type} from the SFU`);
    }
  }

  /**
   * Watches the size of every video under `root` (new tiles included:
   * call it on each statistics sample) and reports it.
   */
  watchTiles(root) {
    for (const video of root.querySelectorAll('video')) {
      if (this.watched.has(video)) continue;
      this.watched.add(video);
      this.resizes.observe(video);
    }
    for (const video of this.watched) {
      if (video.isConnected) continue;
      this.resizes.unobserve(video);
      this.watched.delete(video);
    }
  }

  scheduleTiles() {
    if (this.tileTimer !== null || this.closed) return;
    this.tileTimer = setTimeout(() => {
      this.tileTimer = null;
      this.sendTiles();
    }, TILE_EVERY_MS);
  }

  /** A `tile` message for each slot whose video's device-pixel size changed. */
  sendTiles() {
    const byTrack = new Map(this.pc.getTransceivers().filter((t) => this.slots.has(t.mid)).map((t) => [t.receiver.track, t.mid]));
    const side = (css) => Math.min(MAX_TILE_PIXELS, Math.round(css * devicePixelRatio));
    for (const video of this.watched) {
      const width = side(video.clientWidth);
      const height = side(video.clientHeight);
      // A hidden tile (0 by 0) keeps its last size: the server refuses 0.
      if (width < 1 || height < 1 || !(video.srcObject instanceof MediaStream)) continue;
      for (const track of video.srcObject.getVideoTracks()) {
        const mid = byTrack.get(track);
        const size = `${width}x${height}`;
        if (mid === undefined || this.tileSent.get(mid) === size) continue;
        this.tileSent.set(mid, size);
        this.signal({ type: 'tile', mid, width, height });
      }
    }
  }

  /** The receiving tracks of the slots that carry `peer` now. */
  tracksOf(peer) {
    const mids = new Set([...this.slots].filter(([, s]) => s.peer === peer).map(([mid]) => mid));
    return this.pc.getTransceivers().filter((t) => mids.has(t.mid)).map((t) => t.receiver.track);
  }

  /**
   * peer → RMS audio level since the previous call (from each audio
   * slot's inbound-rtp totalAudioEnergy and totalSamplesDuration).
   */
  audioLevels(report) {
    const now = new Map();
    report.forEach((s) => {
      const peer = s.type === 'inbound-rtp' && s.kind === 'audio' ? this.slots.get(s.mid)?.peer : null;
      if (peer) now.set(peer, { lost: 0, received: 0, energy: s.totalAudioEnergy || 0, duration: s.totalSamplesDuration || 0, mid: s.mid });
    });
    const levels = new Map();
    for (const [peer, c] of now) {
      const prev = this.lastAudio.get(peer);
      if (prev && prev.mid === c.mid) levels.set(peer, delta(prev, c).level);
    }
    this.lastAudio = now;
    return levels;
  }

  /** Sends `track` instead of our current one of `kind` (no renegotiation). */
  async setTrack(kind, track) {
    await this.senders.get(kind)?.replaceTrack(track);
  }

  close() {
    this.closed = true;
    this.resizes.disconnect();
    clearTimeout(this.tileTimer);
    this.pc.close();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** A remote participant of an SFU room: its tile's stream, filled from our slots. */
export class SfuPeer {
  constructor({ id, name, tracks }) {
    this.id = id;
    this.name = name;
    this.state = { audio: false, video: false, screen: false };
    this.stream = new MediaStream(tracks);
    /** No connection of its own: everything comes through the server's. */
    this.pc = null;
    this.chat = null;
  }

  close() {}
}
