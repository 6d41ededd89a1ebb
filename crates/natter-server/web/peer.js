// One RTCPeerConnection to one remote participant, negotiated with the
// W3C "perfect negotiation" pattern (WebRTC 1.0 §10.7): either side may
// offer at any time; on a collision the impolite peer ignores the
// incoming offer and the polite one rolls its own back (implicitly, by
// setRemoteDescription) and answers.
//
// Collisions are also made rare: the participant who joined (the
// "initiator", who learns of the others from `welcome`) attaches its
// tracks and the chat channel at once and so offers first; the others
// attach theirs while answering that offer, which needs no second round.
// Chromium (seen in 156) can stop gathering ICE candidates for good when
// an offer is rolled back while its gathering is still running, so the
// polite side also lets that gathering finish before it rolls back.
//
// Events: track (detail: MediaStream of the peer), chat (detail: text),
// channel (detail: a non-chat RTCDataChannel the peer opened),
// connection (detail: pc.connectionState).

/** The chat channel is pre-negotiated on both sides with this SCTP stream id. */
const CHAT_CHANNEL_ID = 0;
/** A non-initiator that hears no offer this long offers itself. */
const OFFER_GRACE_MS = 3000;
/** Longest wait for our own gathering before rolling an offer back. */
const GATHER_WAIT_MS = 5000;

export class Peer extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.id the remote participant's id
   * @param {string} o.name its display name
   * @param {boolean} o.polite true when we yield on an offer collision
   * @param {boolean} o.initiator true when we offer first
   * @param {RTCConfiguration} o.config
   * @param {(message: object) => void} o.signal sends a signaling message
   * @param {() => MediaStreamTrack[]} o.tracks what we send, asked when attaching
   * @param {MediaStream} o.stream the stream the tracks belong to
   */
  constructor({ id, name, polite, initiator, config, signal, tracks, stream }) {
    super();
    this.id = id;
    this.name = name;
    this.polite = polite;
    this.signal = signal;
    this.tracks = tracks;
    this.stream = stream;
    this.state = { audio: false, video: false, screen: false };
    this.pc = new RTCPeerConnection(config);
    this.remoteStream = new MediaStream();
    this.makingOffer = false;
    this.offering = Promise.resolve();
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    /** Signaling messages for this peer are handled one at a time. */
    this.queue = Promise.resolve();
    this.closed = false;
    /** Chat messages written before the channel opened. */
    this.outbox = [];
    /** The chat channel, once attached. */
    this.chat = null;
    /** Our sender of each kind ('audio', 'video'), once attached. */
    this.senders = new Map();
    this.attached = false;

    const pc = this.pc;
    pc.addEventListener('negotiationneeded', () => {
      this.offering = this.offer();
    });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      // A null candidate is end-of-candidates; the protocol carries it as null.
      this.signal({ type: 'candidate', to: this.id, candidate: candidate ? candidate.toJSON() : null });
    });
    pc.addEventListener('iceconnectionstatechange', () => {
      if (pc.iceConnectionState === 'failed') pc.restartIce();
    });
    pc.addEventListener('connectionstatechange', () => {
      this.emit('connection', pc.connectionState);
    });
    pc.addEventListener('track', ({ track }) => {
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      track.addEventListener('ended', () => this.remoteStream.removeTrack(track));
      this.emit('track', this.remoteStream);
    });
    pc.addEventListener('datachannel', ({ channel }) => this.emit('channel', channel));

    if (initiator) this.attach();
    else this.graceTimer = setTimeout(() => this.attach(), OFFER_GRACE_MS);
  }

  /** Adds our tracks and the chat channel (once). */
  attach() {
    if (this.attached || this.closed) return;
    this.attached = true;
    clearTimeout(this.graceTimer);
    for (const track of this.tracks()) this.senders.set(track.kind, this.pc.addTrack(track, this.stream));
    const chat = this.pc.createDataChannel('chat', { negotiated: true, id: CHAT_CHANNEL_ID, ordered: true });
    this.chat = chat;
    chat.addEventListener('open', () => {
      for (const text of this.outbox.splice(0)) chat.send(text);
    });
    chat.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && message.type === 'chat' && typeof message.text === 'string') {
        this.emit('chat', message.text.slice(0, 4000));
      }
    });
  }

  async offer() {
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.signal({ type: 'offer', to: this.id, sdp: this.pc.localDescription.sdp });
    } catch (e) {
      console.warn(`natter: offer to ${this.id} failed`, e);
    } finally {
      this.makingOffer = false;
    }
  }

  /** An `offer`, `answer` or `candidate` message from this peer. */
  handle(message) {
    this.queue = this.queue.then(() => this.apply(message)).catch((e) => {
      console.warn(`natter: ${message.type} from ${this.id} failed`, e);
    });
    return this.queue;
  }

  async apply(message) {
    if (this.closed) return;
    const pc = this.pc;
    if (message.type === 'candidate') {
      try {
        if (message.candidate) await pc.addIceCandidate(message.candidate);
        else await pc.addIceCandidate();
      } catch (e) {
        // Candidates of an offer we ignored fail; so may end-of-candidates.
        if (!this.ignoreOffer && message.candidate) throw e;
      }
      return;
    }
    const description = { type: message.type, sdp: message.sdp };
    const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.settingRemoteAnswer);
    const collision = description.type === 'offer' && !readyForOffer;
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    if (collision) await this.gathered();
    this.settingRemoteAnswer = description.type === 'answer';
    try {
      await pc.setRemoteDescription(description);
    } finally {
      this.settingRemoteAnswer = false;
    }
    if (description.type === 'offer') {
      // Our tracks take the transceivers the offer created, so the answer
      // already carries them.
      this.attach();
      await pc.setLocalDescription();
      this.signal({ type: 'answer', to: this.id, sdp: pc.localDescription.sdp });
    }
  }

  /** Resolves once our pending offer has finished gathering (or after GATHER_WAIT_MS). */
  async gathered() {
    await this.offering;
    const pc = this.pc;
    if (pc.iceGatheringState !== 'gathering') return;
    await new Promise((resolve) => {
      const timer = setTimeout(done, GATHER_WAIT_MS);
      function done() {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      }
      function check() {
        if (pc.iceGatheringState !== 'gathering') done();
      }
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  /** Sends or replaces our track of `kind`, adding a sender when there is none. */
  async setTrack(kind, track) {
    if (!this.attached) return; // attach() will take the current tracks
    const sender = this.senders.get(kind);
    if (sender) {
      // No renegotiation: the same m-section carries the new source.
      await sender.replaceTrack(track);
    } else if (track) {
      // Renegotiates through negotiationneeded.
      this.senders.set(kind, this.pc.addTrack(track, this.stream));
    }
  }

  sendChat(text) {
    const data = JSON.stringify({ type: 'chat', text });
    if (this.chat && this.chat.readyState === 'open') this.chat.send(data);
    else this.outbox.push(data);
  }

  close() {
    this.closed = true;
    clearTimeout(this.graceTimer);
    this.chat?.close();
    this.pc.close();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
