// A call between headless Chromium and `natter echo` that
// either side can renegotiate (the echo's `/connections/ID/offer`,
// `/negotiate` and `/answer`), for renegotiation.test.mjs and
// ice-path.test.mjs.

import assert from 'node:assert/strict';

/**
 * Installed in the page beside the harness's `window.t`: a call with
 * `natter echo` that can be renegotiated from either side.
 */
export function callHelpers() {
  const within = (ms, what, promise, progress = () => '') =>
    Promise.race([
      promise,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what} ${progress()}`)), ms)),
    ]);
  const gathered = (pc) =>
    within(10000, 'ICE gathering to complete', new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    }));
  const post = async (url, body) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
    return res;
  };
  const ufrag = (sdp) => /^a=ice-ufrag:(\S+)/m.exec(sdp ?? '')?.[1];
  const poll = async (what, ms, check) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await check();
      if (value.done) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${JSON.stringify(value)}`);
      await new Promise((resolve) => setTimeout(resolve, 100)); // getStats has no change event: poll
    }
  };

  window.call = {
    stream: null,
    location: null,
    /**
     * Camera (320x240), with `audio` the microphone too, and a data
     * channel 'echo': offer, POST /offer, answer, wait for 'echo' to open.
     */
    async start({ audio = false } = {}) {
      const stream = (this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240, frameRate: 15 }, audio: true }));
      const pc = (window.t.pc = new RTCPeerConnection());
      // Chromium decodes received audio only while something plays it.
      pc.addEventListener('track', (e) => {
        if (e.track.kind !== 'audio') return;
        const audio = document.body.appendChild(document.createElement('audio'));
        audio.srcObject = new MediaStream([e.track]);
        audio.play();
      });
      // Channels natter opens, kept from the moment they arrive.
      pc.addEventListener('datachannel', (e) => {
        e.channel.binaryType = 'arraybuffer';
        window.t.channels[e.channel.label] = e.channel;
      });
      pc.addTrack(stream.getVideoTracks()[0], stream);
      if (audio) pc.addTrack(stream.getAudioTracks()[0], stream);
      const dc = (window.t.channels.echo = pc.createDataChannel('echo'));
      dc.binaryType = 'arraybuffer';
      const open = new Promise((resolve) => dc.addEventListener('open', resolve, { once: true }));
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const res = await post('/offer', pc.localDescription);
      this.location = res.headers.get('location');
      if (!this.location) throw new Error('POST /offer: no Location header naming the connection');
      await pc.setRemoteDescription(await res.json());
      await within(15000, "'echo' to open", open, () => `(connectionState ${pc.connectionState})`);
      return { location: this.location };
    },

    /** Chromium offers what `change()` asked for, natter answers. */
    async chromiumOffers(change = () => {}, { iceRestart = false } = {}) {
      const pc = window.t.pc;
      const before = { local: ufrag(pc.localDescription.sdp), remote: ufrag(pc.remoteDescription.sdp) };
      await change(pc);
      await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
      await gathered(pc);
      const res = await post(`${this.location}/offer`, pc.localDescription);
      await pc.setRemoteDescription(await res.json());
      return { before, after: { local: ufrag(pc.localDescription.sdp), remote: ufrag(pc.remoteDescription.sdp) }, signalingState: pc.signalingState };
    },

    /**
     * natter offers after making `request` (see `natter echo`'s
     * `Negotiate`); Chromium answers, sending its microphone on an
     * audio section natter added.
     */
    async natterOffers(request) {
      const pc = window.t.pc;
      const before = { local: ufrag(pc.localDescription.sdp), remote: ufrag(pc.remoteDescription.sdp) };
      const offer = await (await post(`${this.location}/negotiate`, request)).json();
      await pc.setRemoteDescription(offer);
      for (const transceiver of pc.getTransceivers()) {
        const kind = transceiver.receiver.track.kind;
        if (kind === 'audio' && !transceiver.sender.track && transceiver.currentDirection === null) {
          await transceiver.sender.replaceTrack(this.stream.getAudioTracks()[0]);
          transceiver.direction = 'sendrecv';
        }
      }
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      await post(`${this.location}/answer`, pc.localDescription);
      return { before, after: { local: ufrag(pc.localDescription.sdp), remote: ufrag(pc.remoteDescription.sdp) }, signalingState: pc.signalingState };
    },

    /** Each transceiver's mid, kind, direction and currentDirection. */
    transceivers() {
      return window.t.pc.getTransceivers().map((t) => ({ mid: t.mid, kind: t.receiver.track.kind, direction: t.direction, currentDirection: t.currentDirection, sending: !!t.sender.track }));
    },

    /** Inbound RTP of `kind` for the transceiver with `mid`. */
    async inbound(kind, mid) {
      const report = await window.t.pc.getStats();
      const s = [...report.values()].find((r) => r.type === 'inbound-rtp' && r.kind === kind && (mid === undefined || r.mid === mid));
      return { framesDecoded: s?.framesDecoded ?? 0, frameWidth: s?.frameWidth, frameHeight: s?.frameHeight, totalSamplesReceived: s?.totalSamplesReceived ?? 0, concealedSamples: s?.concealedSamples ?? 0, packetsReceived: s?.packetsReceived ?? 0 };
    },

    async inboundAll() {
      const report = await window.t.pc.getStats();
      return [...report.values()].filter((r) => r.type === 'inbound-rtp').map((r) => ({ kind: r.kind, mid: r.mid, ssrc: r.ssrc, packets: r.packetsReceived, samples: r.totalSamplesReceived }));
    },

    /** Waits until the video natter reflects on `mid` has `more` frames decoded beyond now. */
    async moreVideo(mid, more = 15, ms = 15000) {
      const start = (await this.inbound('video', mid)).framesDecoded;
      return poll(`${more} more reflected video frames on mid ${mid}`, ms, async () => {
        const now = (await this.inbound('video', mid)).framesDecoded;
        return { done: now >= start + more, start, now, all: now >= start + more ? undefined : await this.inboundAll() };
      });
    },

    /** Waits until audio natter reflects on `mid` has 0.5 s more samples decoded, and returns the concealment. */
    async moreAudio(mid, ms = 15000) {
      const start = await this.inbound('audio', mid);
      return poll(`0.5 s more reflected audio on mid ${mid}`, ms, async () => {
        const now = await this.inbound('audio', mid);
        const samples = now.totalSamplesReceived - start.totalSamplesReceived;
        const concealed = now.concealedSamples - start.concealedSamples;
        return { done: samples >= 24000, samples, concealed, packets: now.packetsReceived, all: await this.inboundAll() };
      });
    },

    /** Waits until Chromium's selected pair has a remote candidate at `address`. */
    async selectedRemote(address) {
      return poll(`a selected pair to natter's ${address}`, 15000, async () => {
        const report = await window.t.pc.getStats();
        const transport = [...report.values()].find((r) => r.type === 'transport');
        const pair = transport && report.get(transport.selectedCandidatePairId);
        const remote = pair && report.get(pair.remoteCandidateId);
        return { done: remote?.address === address && pair.state === 'succeeded', remote: remote && `${remote.address}:${remote.port}`, state: pair?.state };
      });
    },

    /** One message on `label` and its echo, waited for up to `ms` (SCTP may be retransmitting after a path change). */
    async echoOnce(label, ms) {
      const dc = window.t.channels[label];
      const echoed = new Promise((resolve) => dc.addEventListener('message', (e) => resolve(e.data), { once: true }));
      dc.send(`ping ${label}`);
      return within(ms, `the echo on '${label}'`, echoed, () => `(readyState ${dc.readyState})`);
    },

    /** Waits for ICE to be connected again (after a restart). */
    async iceConnected() {
      const pc = window.t.pc;
      return poll('iceConnectionState connected', 15000, async () => ({ done: ['connected', 'completed'].includes(pc.iceConnectionState), state: pc.iceConnectionState }));
    },

    /** Waits for the channel natter opened with `label` to be open in the page. */
    async natterChannel(label) {
      const { state } = await poll(`natter's channel '${label}' to open`, 10000, async () => {
        const state = window.t.channels[label]?.readyState;
        return { done: state === 'open', state };
      });
      return state;
    },
  };
}

/** The one connection in the echo's /status. */
export async function natterSide(echo) {
  const status = await echo.status();
  assert.equal(status.length, 1, `one connection at natter: ${JSON.stringify(status)}`);
  return status[0];
}

/** natter's active senders (not paused by their direction) of `format` ('Vp8', 'Opus'), and its receivers. */
export function streams(connection, format) {
  const media = connection.media ?? {};
  return {
    senders: (media.senders ?? []).filter((s) => s.format === format && s.active),
    receivers: media.receivers ?? [],
  };
}

/** Echo pings on `label` come back byte-exact. */
export async function echoes(page, label, count = 20) {
  const result = await page.evaluate(({ label, count }) => window.t.pingPong(label, count), { label, count });
  assert.deepEqual(result.mismatches, [], `every echo on '${label}' byte-exact`);
}

