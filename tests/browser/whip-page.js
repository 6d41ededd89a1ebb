// A small WHIP (RFC 9725) and WHEP client for a Chromium page of the
// server's origin, with nothing but fetch and RTCPeerConnection:
// tests/browser/whip.test.mjs adds it to a page and drives it through
// `window.whip`. Every response's status is kept in `whip.log`.

(() => {
  const log = [];
  let pc = null;
  let location = null;
  let etag = null;
  let pending = [];
  let gathered = false;

  /** RFC 8840 §9: the ICE lines of a trickle fragment for the first section. */
  function fragment(sdp, candidates, end) {
    const line = (name) => sdp.match(new RegExp(`^a=${name}:(.*)$`, 'm'))?.[1].trim();
    const lines = [`a=ice-ufrag:${line('ice-ufrag')}`, `a=ice-pwd:${line('ice-pwd')}`, 'm=audio 9 UDP/TLS/RTP/SAVPF 0', `a=mid:${line('mid')}`];
    for (const c of candidates) lines.push(`a=${c}`);
    if (end) lines.push('a=end-of-candidates');
    return `${lines.join('\r\n')}\r\n`;
  }

  /** PATCH a fragment to the session (RFC 9725 §4.3.1); the status. */
  async function patch(body) {
    const r = await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': etag }, body });
    log.push({ method: 'PATCH', status: r.status, text: await r.text() });
    return r.status;
  }

  /** Sends the candidates gathered since the last PATCH, once the session exists. */
  async function trickle() {
    if (!location || (pending.length === 0 && !gathered)) return;
    const batch = pending;
    const end = gathered;
    pending = [];
    gathered = false;
    await patch(fragment(pc.localDescription.sdp, batch, end));
  }

  /**
   * POSTs the offer of `pc` to `url` with `token` (none when null) at
   * once, without waiting for candidates (they follow in PATCHes), and
   * applies the answer. Returns {status, location, etag, link, text}.
   */
  async function post(url, token) {
    pc.onicecandidate = (e) => {
      if (e.candidate) pending.push(e.candidate.candidate);
      else gathered = true;
      trickle();
    };
    await pc.setLocalDescription(await pc.createOffer());
    const headers = { 'Content-Type': 'application/sdp' };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
    const text = await r.text();
    const out = { status: r.status, location: r.headers.get('location'), etag: r.headers.get('etag'), link: r.headers.get('link'), challenge: r.headers.get('www-authenticate'), text };
    log.push({ method: 'POST', status: r.status, text });
    if (r.status !== 201) {
      pc.close();
      pc = null;
      return out;
    }
    location = new URL(out.location, url).href;
    etag = out.etag;
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
    await trickle();
    return out;
  }

  window.whip = {
    log,
    /** WHIP: publishes the fake camera (320x240, VP8) and microphone. */
    async publish(url, token) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240, frameRate: 15 } });
      pc = new RTCPeerConnection();
      for (const track of stream.getTracks()) {
        const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
        if (track.kind === 'video') {
          const vp8 = RTCRtpSender.getCapabilities('video').codecs.filter((c) => /\/(VP8|rtx)$/i.test(c.mimeType));
          t.setCodecPreferences(vp8);
        }
      }
      return post(url, token);
    },
    /** WHEP: one audio and one video receive section. */
    async play(url, token) {
      pc = new RTCPeerConnection();
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
      return post(url, token);
    },
    /**
     * ICE restart (RFC 9725 §4.3.2): PATCHes the restart offer's ICE
     * credentials with `If-Match: "*"`, then applies the offer and, as the
     * answer, the current remote description with the server's new
     * credentials from the 200's fragment (its candidates are the same);
     * the new offer's candidates trickle with the new ETag.
     * Returns {status, ufrag (ours, new), serverUfrag, etag, text}.
     */
    async restartIce() {
      pc.restartIce();
      const offer = await pc.createOffer();
      const ours = (name) => offer.sdp.match(new RegExp(`^a=${name}:(.*)$`, 'm'))[1].trim();
      const body = `a=ice-ufrag:${ours('ice-ufrag')}\r\na=ice-pwd:${ours('ice-pwd')}\r\n`;
      const r = await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' }, body });
      const text = await r.text();
      log.push({ method: 'PATCH', status: r.status, text });
      const out = { status: r.status, ufrag: ours('ice-ufrag'), serverUfrag: null, etag: r.headers.get('etag'), text };
      if (r.status !== 200) return out;
      const theirs = (name) => text.match(new RegExp(`^a=${name}:(.*)$`, 'm'))?.[1].trim();
      out.serverUfrag = theirs('ice-ufrag');
      etag = out.etag;
      await pc.setLocalDescription(offer);
      const sdp = pc.currentRemoteDescription.sdp
        .replace(/^a=ice-ufrag:.*$/gm, `a=ice-ufrag:${out.serverUfrag}`)
        .replace(/^a=ice-pwd:.*$/gm, `a=ice-pwd:${theirs('ice-pwd')}`);
      await pc.setRemoteDescription({ type: 'answer', sdp });
      return out;
    },
    /** DELETE the session (RFC 9725 §4.2); the status. */
    async end() {
      const r = await fetch(location, { method: 'DELETE' });
      log.push({ method: 'DELETE', status: r.status, text: await r.text() });
      pc?.close();
      return r.status;
    },
    /**
     * Frames decoded, audio packets received, packets sent, the
     * connection's state, and the selected candidate pair with the local
     * ICE ufrag it is checked with.
     */
    async stats() {
      const s = { framesDecoded: 0, audioPackets: 0, videoPacketsSent: 0, audioPacketsSent: 0, frameWidth: null, state: pc?.connectionState ?? 'closed', pair: null, ufrag: null };
      if (!pc) return s;
      const report = await pc.getStats();
      report.forEach((r) => {
        if (r.type === 'transport' && r.selectedCandidatePairId) {
          s.pair = r.selectedCandidatePairId;
          s.ufrag = r.iceLocalUsernameFragment ?? report.get(report.get(r.selectedCandidatePairId)?.localCandidateId)?.usernameFragment ?? null;
        }
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          s.framesDecoded += r.framesDecoded || 0;
          s.frameWidth = r.frameWidth ?? s.frameWidth;
        }
        if (r.type === 'inbound-rtp' && r.kind === 'audio') s.audioPackets += r.packetsReceived || 0;
        if (r.type === 'outbound-rtp') s[`${r.kind}PacketsSent`] += r.packetsSent || 0;
      });
      return s;
    },
  };
})();
