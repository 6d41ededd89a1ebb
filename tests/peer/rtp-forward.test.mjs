// namespace: lo
// RTP mode between two headless Chromiums (issue 18, acceptance 3):
// Chromium A publishes its 1280x720 fake camera as three VP8 simulcast
// layers (rid q/h/f) to natter-io's forward example, which forwards one
// layer's RTP packets to Chromium B without depacketizing them: it
// rewrites SSRC, sequence number and timestamp, and switches layers only
// at a keyframe of the layer it switches to (asking A for one). The test
// switches layers five times; B's getStats shows one inbound video
// stream (one SSRC) that keeps decoding across every switch, at the size
// of each layer in turn, and the example's /status counts the switches
// and the packets forwarded. Run by scripts/test-peer inside a network
// namespace with only `lo`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, until } from './harness.mjs';
import { pageAt, startExample } from './media.mjs';

/** The layers the test switches to after starting on `q`: five switches. */
const SWITCHES = ['h', 'f', 'q', 'f', 'h'];
/** The frames B must decode at a layer's size before the next switch. */
const FRAMES_PER_LAYER = 30;

/**
 * Installed in a page as `window.negotiate(pc, out)`: the offer POSTed
 * to /offer, natter's answer applied; `out` with the answer's SDP.
 */
function negotiateHelper() {
  window.negotiate = async (pc, out) => {
    const answer = await window.postOffer(pc, out);
    out.answer = answer.sdp;
    out.stage = 'setRemoteDescription';
    await pc.setRemoteDescription(answer);
    return { ...out, stage: 'done' };
  };
}

/** In page A: the fake camera at 1280x720 sent as three VP8 layers, offered to /offer and answered. */
async function publish(page) {
  return page.evaluate(async () => {
    const out = { stage: 'getUserMedia' };
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { exact: 1280 }, height: { exact: 720 }, frameRate: 30 } });
      const [track] = stream.getVideoTracks();
      const pc = (window.pc = new RTCPeerConnection());
      const video = pc.addTransceiver(track, {
        direction: 'sendonly',
        sendEncodings: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }],
      });
      await video.sender.setParameters({ ...video.sender.getParameters(), degradationPreference: 'maintain-resolution' });
      window.preferCodec(video, 'vp8', []);
      return await window.negotiate(pc, out);
    } catch (e) {
      return { ...out, error: `${out.stage}: ${e.message}` };
    }
  });
}

/** In page B: a receive-only VP8 transceiver, played in a <video>, offered to /offer and answered. */
async function subscribe(page) {
  return page.evaluate(async () => {
    const out = { stage: 'offer' };
    try {
      const pc = (window.pc = new RTCPeerConnection());
      const video = pc.addTransceiver('video', { direction: 'recvonly' });
      window.preferCodec(video, 'vp8', []);
      pc.ontrack = ({ track }) => {
        const element = document.body.appendChild(document.createElement('video'));
        element.muted = true;
        element.srcObject = new MediaStream([track]);
        element.play().catch((e) => console.error(`video.play: ${e.message}`));
      };
      return await window.negotiate(pc, out);
    } catch (e) {
      return { ...out, error: `${out.stage}: ${e.message}` };
    }
  });
}

/** In a page: its video RTP statistics of `type` ('inbound-rtp' or 'outbound-rtp'). */
async function videoStats(page, type) {
  return page.evaluate(async (type) => {
    const report = await window.pc.getStats();
    return [...report.values()]
      .filter((s) => s.type === type && s.kind === 'video')
      .map((s) => ({
        rid: s.rid, ssrc: s.ssrc, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        framesDecoded: s.framesDecoded, keyFramesDecoded: s.keyFramesDecoded, framesEncoded: s.framesEncoded,
        freezeCount: s.freezeCount, pliCount: s.pliCount, nackCount: s.nackCount, packetsLost: s.packetsLost,
        packetsReceived: s.packetsReceived, codec: report.get(s.codecId)?.mimeType,
      }));
  }, type);
}

describe('RTP forwarding between two headless Chromiums through natter (RTP mode)', () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  test('B decodes A\'s simulcast layers forwarded as one stream, at each layer\'s size, across five switches made at keyframes', async (t) => {
    const forward = await startExample('forward', 'rtp-forward', ['--rid', 'q']);
    const context = await browser.newContext();
    try {
      const a = await pageAt(context, forward.url);
      await a.evaluate(negotiateHelper);
      const published = await publish(a);
      assert.ok(!published.error, `${published.error}\nanswer:\n${published.answer ?? '(none)'}\nlog: ${forward.logPath}`);
      assert.match(published.answer, /^a=simulcast:recv q;h;f\r?$/m, 'natter receives the three layers');
      const b = await pageAt(context, forward.url);
      await b.evaluate(negotiateHelper);
      const subscribed = await subscribe(b);
      assert.ok(!subscribed.error, `${subscribed.error}\nanswer:\n${subscribed.answer ?? '(none)'}\nlog: ${forward.logPath}`);
      assert.match(subscribed.answer, /^a=sendonly\r?$/m, 'natter sends video to B');

      // Each layer's size as A encodes it. When A's estimate allows the f
      // layer, and how soon a loaded machine lets it encode it, is Chromium's.
      const widths = {};
      await until(async () => {
        for (const layer of await videoStats(a, 'outbound-rtp')) if (layer.frameWidth) widths[layer.rid] = layer.frameWidth;
        return ['q', 'h', 'f'].every((rid) => widths[rid]);
      }, { timeout: 60000, what: 'A to encode every layer', describe: async () => JSON.stringify(await videoStats(a, 'outbound-rtp')) });
      t.diagnostic(`A's layers: ${JSON.stringify(widths)}`);
      assert.ok(widths.q < widths.h && widths.h < widths.f, `the layers differ in size: ${JSON.stringify(widths)}`);

      let decoded = 0;
      const history = [];
      /** A's frames encoded in layer `rid`. */
      const encodedIn = async (rid) => (await videoStats(a, 'outbound-rtp')).find((l) => l.rid === rid)?.framesEncoded ?? 0;
      /**
       * Waits until B decodes FRAMES_PER_LAYER more frames at `rid`'s
       * width; returns B's stats. How fast A encodes a layer is Chromium's
       * choice (its CPU adaptation slows the f layer to a few frames a
       * second on a loaded machine), so the wait gives up once A has
       * encoded FRAMES_PER_LAYER frames of the layer and 3 s at 30 fps
       * more since natter switched to it (at its keyframe, which A may
       * be slow to send), not after a fixed time.
       */
      const decodesAt = async (rid) => {
        let from = null;
        let stats;
        const done = await until(async () => {
          const inbound = await videoStats(b, 'inbound-rtp');
          assert.ok(inbound.length <= 1, `B has one inbound video stream: ${JSON.stringify(inbound)}`);
          [stats] = inbound;
          if (from === null) {
            if ((await forward.status()).current !== rid) return false;
            from = await encodedIn(rid);
          }
          const encoded = (await encodedIn(rid)) - from;
          if (encoded >= FRAMES_PER_LAYER + 90) return { decoded: false, encoded };
          if (!stats?.framesDecoded) return false;
          history.push({ rid, width: stats.frameWidth, framesDecoded: stats.framesDecoded });
          return stats.frameWidth === widths[rid] && stats.framesDecoded >= decoded + FRAMES_PER_LAYER && { decoded: true, encoded };
        }, {
          // Chromium stalling altogether is a failure too, but not one to wait 10 minutes for.
          timeout: 120000, interval: 200, what: `B to decode ${FRAMES_PER_LAYER} frames at layer ${rid} (${widths[rid]} wide)`,
          describe: async () => `B: ${JSON.stringify(await videoStats(b, 'inbound-rtp'))}; A: ${JSON.stringify(await videoStats(a, 'outbound-rtp'))}; forward: ${JSON.stringify(await forward.status())}`,
        });
        assert.ok(done.decoded, `B decoded ${FRAMES_PER_LAYER} frames at layer ${rid} (${widths[rid]} wide) while A encoded ${done.encoded} of that layer: B ${JSON.stringify(stats)}; forward: ${JSON.stringify(await forward.status())}`);
        assert.ok(stats.framesDecoded > decoded, `B's decoded frames went on from ${decoded} to ${stats.framesDecoded}`);
        decoded = stats.framesDecoded;
        return stats;
      };

      const first = await decodesAt('q');
      const ssrc = first.ssrc;
      for (const rid of SWITCHES) {
        const res = await fetch(`${forward.url}/layer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rid }) });
        assert.ok(res.ok, `POST /layer ${rid}: ${res.status} ${await res.text()}`);
        const stats = await decodesAt(rid);
        assert.equal(stats.ssrc, ssrc, 'B sees one SSRC across the switch: natter rewrote it');
        const leg = (await forward.status()).subscriber;
        t.diagnostic(`at ${rid}: ${JSON.stringify(stats)}; natter's estimate of B's leg ${leg.available_outgoing_bitrate} bit/s, probe padding ${leg.padding_sent}`);
      }

      const status = await forward.status();
      const [last] = await videoStats(b, 'inbound-rtp');
      t.diagnostic(`forward: ${JSON.stringify(status)}`);
      t.diagnostic(`B: ${JSON.stringify(last)}`);
      assert.deepEqual(status.switches.map((s) => s.to), SWITCHES, 'natter switched to each layer asked for, in order');
      for (const s of status.switches) assert.ok(s.at_keyframe, `the switch to ${s.to} happened at a keyframe of that layer`);
      assert.ok(status.forwarded > 0, 'natter forwarded packets');
      assert.deepEqual(status.errors, [], 'every write_rtp succeeded once the subscriber connected');
      const [sender] = status.subscriber.senders;
      assert.ok(sender.packets_sent > 0, `natter's sender to B counted what it sent: ${JSON.stringify(sender)}`);
      assert.equal(sender.ssrc, ssrc, "B's SSRC is natter's sender's, not one of A's layers'");
      const received = Object.fromEntries(status.publisher.receivers.map((r) => [r.rid, r]));
      for (const rid of ['q', 'h', 'f']) {
        assert.ok(received[rid]?.packets_received > 0, `natter received layer ${rid} in RTP mode: ${JSON.stringify(received[rid])}`);
        assert.notEqual(received[rid].ssrc, ssrc, `layer ${rid} came with an SSRC of A's own`);
      }
      assert.equal(last.codec, 'video/VP8');
      assert.ok(last.keyFramesDecoded >= SWITCHES.length + 1, `B decoded a keyframe at the start and after each switch: ${last.keyFramesDecoded}`);
      // A reset of B's decoder would restart its count; it only grew.
      for (let i = 1; i < history.length; i++) {
        assert.ok(history[i].framesDecoded >= history[i - 1].framesDecoded, `B's decoded frames never went back: ${JSON.stringify(history.slice(i - 1, i + 1))}`);
      }
    } finally {
      await context.close();
      await forward.stop();
    }
  });
});
