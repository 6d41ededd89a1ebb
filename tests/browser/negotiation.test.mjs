// Perfect negotiation under glare: two Peers (web/peer.js) in one page,
// wired to each other through in-order lanes with random delays, both offering at the same
// moment, first at the start and then again mid-call when both restart
// ICE at once. Every pairing must end up connected with media both ways.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, startServer } from './harness.mjs';

describe('perfect negotiation (web/peer.js)', () => {
  let server;
  let browser;
  let page;

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'negotiation' });
    page = await browser.newPage();
    // Any page of the server: same origin as the modules, a secure context.
    await page.goto(`${server.url}/?room=unused`);
  });

  after(async () => {
    await browser?.close();
    if (server) {
      await server.stopCleanly();
    }
  });

  test('simultaneous offers at the start and mid-call, 6 pairs', async () => {
    const results = await page.evaluate(async () => {
      const { Peer } = await import('/peer.js');
      const audio = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0];
      const video = (await navigator.mediaDevices.getUserMedia({ video: { width: 160, height: 120 } })).getVideoTracks()[0];
      const deadline = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms));
      const inbound = async (pc, kind) => {
        let n = 0;
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === kind) n += kind === 'video' ? s.framesDecoded || 0 : s.totalSamplesReceived || 0;
        });
        return n;
      };
      const poll = async (check, what, ms = 15000) => {
        const end = performance.now() + ms;
        while (!(await check())) {
          if (performance.now() > end) throw new Error(`timeout: ${what}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const out = [];
      for (let round = 0; round < 6; round++) {
        const stream = new MediaStream([audio.clone(), video.clone()]);
        const peers = {};
        // Each direction is a FIFO with random delays, like one WebSocket.
        const lanes = { a: Promise.resolve(), b: Promise.resolve() };
        const deliver = (me, them, m) => {
          lanes[me] = lanes[me].then(() => new Promise((r) => setTimeout(r, Math.random() * 10))).then(() => peers[them].handle({ ...m, from: me }));
        };
        const make = (me, them) =>
          new Peer({
            id: them,
            name: them,
            polite: me < them,
            initiator: true, // both offer at once: a collision every time
            config: { bundlePolicy: 'max-bundle' }, // as the app uses
            signal: (m) => deliver(me, them, m),
            tracks: () => stream.getTracks(),
            stream,
          });
        peers.a = make('a', 'b');
        peers.b = make('b', 'a');
        // Chromium decodes received audio only while something plays it.
        const players = [];
        for (const peer of [peers.a, peers.b]) {
          peer.pc.addEventListener('track', (e) => {
            if (e.track.kind !== 'audio') return;
            const player = document.body.appendChild(document.createElement('audio'));
            player.srcObject = new MediaStream([e.track]);
            player.play();
            players.push(player);
          });
        }
        const chats = { a: [], b: [] };
        peers.a.addEventListener('chat', (e) => chats.a.push(e.detail));
        peers.b.addEventListener('chat', (e) => chats.b.push(e.detail));
        await poll(async () => (await inbound(peers.a.pc, 'audio')) > 0 && (await inbound(peers.b.pc, 'audio')) > 0, `round ${round}: audio decoded both ways`);
        peers.a.sendChat('to b');
        peers.b.sendChat('to a');
        await poll(async () => chats.a.includes('to a') && chats.b.includes('to b'), `round ${round}: chat both ways`);
        // Both restart ICE at the same moment: a second collision, mid-call.
        const ufrag = (pc) => /a=ice-ufrag:(\S+)/.exec(pc.localDescription.sdp)[1];
        const before = { a: ufrag(peers.a.pc), b: ufrag(peers.b.pc), frames: await inbound(peers.a.pc, 'video') };
        peers.a.pc.restartIce();
        peers.b.pc.restartIce();
        await poll(
          async () => ufrag(peers.a.pc) !== before.a && ufrag(peers.b.pc) !== before.b && peers.a.pc.signalingState === 'stable' && peers.b.pc.signalingState === 'stable',
          `round ${round}: both restarted ICE`,
        );
        await poll(async () => (await inbound(peers.a.pc, 'video')) > before.frames + 10 && (await inbound(peers.b.pc, 'video')) > 0, `round ${round}: video after the second collision`);
        out.push({ a: peers.a.pc.connectionState, b: peers.b.pc.connectionState, transceivers: peers.a.pc.getTransceivers().length });
        peers.a.close();
        peers.b.close();
        for (const player of players) player.remove();
      }
      return out;
    });
    for (const r of results) {
      assert.deepEqual([r.a, r.b], ['connected', 'connected']);
      assert.equal(r.transceivers, 2, 'one audio and one video transceiver, shared by both sides');
    }
  });
});
