// namespace: lo
// Simulcast from headless Chromium to natter-io (issue 18, acceptance 2):
// Chromium's fake camera at 1280x720 publishes three layers (rid q, h,
// f: scaleResolutionDownBy 4, 2, 1) in VP8, then VP9, then H.264 to the
// record example, which writes one file per layer; ffprobe reads
// video-q, video-h and video-f (.ivf, or .h264 for H.264) at 320x180,
// 640x360 and 1280x720 with every frame natter wrote, and nearly every
// frame Chromium encoded in each layer; natter's stats (record's /status) list one receiver per rid,
// and Chromium's getStats one outbound-rtp per rid. Then with 5% loss in front of natter's socket
// (iptables `statistic`) once every layer flows (under loss from the
// start Chromium's bandwidth estimate may never allow the f layer):
// every layer still records, and natter's stats show NACKs and
// retransmissions on each layer. Run by scripts/test-peer inside a
// network namespace with only `lo`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ARTIFACTS, launchBrowser, until } from './harness.mjs';
import { NATTER_FMTP, dropAtRandom, ffmpegTool, pageAt, probe, startExample } from './media.mjs';

const RIDS = ['q', 'h', 'f'];

/**
 * The codecs each simulcast case runs with: `codec` as preferCodec and
 * NATTER_FMTP name it, Chromium's mimeType, the file extension record
 * writes and ffprobe's codec_name.
 */
const CODECS = [
  { codec: 'vp8', mimeType: 'video/VP8', ext: 'ivf', codecName: 'vp8' },
  { codec: 'vp9', mimeType: 'video/VP9', ext: 'ivf', codecName: 'vp9' },
  { codec: 'h264', mimeType: 'video/H264', ext: 'h264', codecName: 'h264' },
];

/**
 * In the page: the fake camera at 1280x720, a send-only transceiver in
 * `codec` (the variant natter takes) with three simulcast encodings,
 * offer, POST to /offer. The answer is kept in `window.answer`, not yet
 * applied. Each encoding asks for `L1T1` (one spatial, one temporal
 * layer): without a scalability mode Chromium (156) sends VP9 with three
 * encodings in its legacy SVC mode, one stream on the first rid only
 * (seen: rid q alone, 320x180), instead of simulcast.
 */
async function offerSimulcast(page, codec) {
  return page.evaluate(async ([codec, fmtp]) => {
    const out = { stage: 'getUserMedia' };
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { exact: 1280 }, height: { exact: 720 }, frameRate: 30 } });
      const [track] = stream.getVideoTracks();
      out.camera = track.getSettings();
      const pc = (window.pc = new RTCPeerConnection());
      const video = pc.addTransceiver(track, {
        direction: 'sendonly',
        sendEncodings: [
          { rid: 'q', scaleResolutionDownBy: 4, scalabilityMode: 'L1T1' },
          { rid: 'h', scaleResolutionDownBy: 2, scalabilityMode: 'L1T1' },
          { rid: 'f', scalabilityMode: 'L1T1' },
        ],
      });
      // Under CPU load, lower the frame rate rather than the layers' sizes.
      await video.sender.setParameters({ ...video.sender.getParameters(), degradationPreference: 'maintain-resolution' });
      window.preferCodec(video, codec, fmtp);
      window.answer = await window.postOffer(pc, out);
      return { ...out, answer: window.answer.sdp, stage: 'posted' };
    } catch (e) {
      return { ...out, error: `${out.stage}: ${e.message}` };
    }
  }, [codec, NATTER_FMTP[codec] ?? []]);
}

/** In the page: applies the answer POST /offer returned. */
async function applyAnswer(page) {
  return page.evaluate(async () => {
    try {
      await window.pc.setRemoteDescription(window.answer);
      return {};
    } catch (e) {
      return { error: `setRemoteDescription: ${e.message}` };
    }
  });
}

/** In the page: Chromium's outbound video statistics, one entry per rid. */
async function outboundLayers(page) {
  return page.evaluate(async () => {
    const report = await window.pc.getStats();
    return [...report.values()]
      .filter((s) => s.type === 'outbound-rtp' && s.kind === 'video')
      .map((s) => ({ rid: s.rid, ssrc: s.ssrc, framesEncoded: s.framesEncoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight, nackCount: s.nackCount, retransmittedPacketsSent: s.retransmittedPacketsSent, codec: report.get(s.codecId)?.mimeType }));
  });
}

/** natter's receivers (record's /status), by rid. */
function natterLayers(progress) {
  return Object.fromEntries((progress?.media?.receivers ?? []).map((r) => [r.rid, r]));
}

/**
 * Records Chromium's three layers in `codec` (a CODECS entry) with
 * natter's record example into `dir` until it has written `frames` frames (of all layers), at least
 * `layerFrames` of each layer (Chromium may start its f layer late, once its bandwidth estimate allows
 * it: one CI-stage run saw 0 f frames while q and h filled 600), and closed its files. `flowing(port)` runs once natter receives all three
 * layers, with the UDP port of natter's host candidate. Returns natter's
 * final summary, Chromium's outbound layers and ffprobe's view of each
 * layer's file.
 */
async function recordSimulcast(t, browser, { codec, dir, name, frames, layerFrames = 60, flowing = () => {} }) {
  fs.rmSync(dir, { recursive: true, force: true }); // record creates it
  const recorder = await startExample('record', name, ['--out', dir, '--frames', String(frames), '--layer-frames', String(layerFrames)]);
  let done = false;
  recorder.exit.then(() => (done = true));
  const context = await browser.newContext();
  try {
    const page = await pageAt(context, recorder.url);
    const sent = await offerSimulcast(page, codec.codec);
    assert.ok(!sent.error, `${sent.error}\nanswer:\n${sent.answer ?? '(none)'}\nlog: ${recorder.logPath}`);
    t.diagnostic(`camera: ${JSON.stringify(sent.camera)}`);
    assert.equal(`${sent.camera.width}x${sent.camera.height}`, '1280x720', 'the fake camera gives 1280x720');
    assert.match(sent.offer, /^a=simulcast:send q;h;f\r?$/m, 'Chromium offers three simulcast layers');
    for (const rid of RIDS) assert.match(sent.offer, new RegExp(`^a=rid:${rid} send`, 'm'), `Chromium's offer has rid ${rid}`);
    assert.match(sent.answer, /^a=simulcast:recv q;h;f\r?$/m, 'natter answers receiving the three layers');
    const port = Number(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/m.exec(sent.answer)?.[1]);
    assert.ok(port > 0, "natter's answer has a 127.0.0.1 host candidate");
    const applied = await applyAnswer(page);
    assert.ok(!applied.error, `${applied.error}\nlog: ${recorder.logPath}`);
    await until(async () => {
      if (done) return true;
      const layers = natterLayers(await recorder.status());
      return RIDS.every((rid) => layers[rid]?.frames_received > 0);
    }, {
      timeout: 30000, what: 'natter to receive frames of every layer',
      describe: async () => JSON.stringify((await recorder.status()).media?.receivers),
    });
    if (!done) flowing(port);
    await until(() => done, {
      timeout: 90000, what: `the recorder to write ${frames} frames, ${layerFrames} of each layer, and exit (log: ${recorder.logPath})`,
      describe: async () => {
        const status = await recorder.status();
        return `written per layer ${JSON.stringify(status.layer_frames)}; Chromium ${JSON.stringify(await outboundLayers(page))}; natter ${JSON.stringify(status.media?.receivers)}`;
      },
    });
    const chromium = await outboundLayers(page);
    assert.equal((await recorder.exit).code, 0, `the recorder exited cleanly; log: ${recorder.logPath}`);
    const summary = JSON.parse(recorder.stdout().trim().split('\n').pop());
    t.diagnostic(`Chromium outbound: ${JSON.stringify(chromium)}`);
    t.diagnostic(`natter receivers: ${JSON.stringify(summary.media.receivers)}`);
    t.diagnostic(`natter dropped: ${JSON.stringify(summary.media.dropped)}`);
    assert.deepEqual(summary.errors, []);
    assert.equal(summary.media.dropped.unknown_rid, 0, 'natter knew every rid');
    const files = Object.fromEntries(RIDS.map((rid) => {
      const video = probe(path.join(dir, `video-${rid}.${codec.ext}`), 'v');
      t.diagnostic(`ffprobe video-${rid}.${codec.ext}: ${JSON.stringify(video)}`);
      return [rid, video];
    }));
    return { summary, chromium, files };
  } finally {
    await context.close();
    await recorder.stop();
  }
}

/** Chromium's three outbound-rtp entries are the rids q/h/f in `codec`, each encoding. */
function assertChromiumLayers(chromium, codec) {
  assert.deepEqual(chromium.map((s) => s.rid).sort(), [...RIDS].sort(), "Chromium's getStats has one outbound-rtp per rid");
  for (const layer of chromium) {
    assert.equal(layer.codec, codec.mimeType, `Chromium encodes layer ${layer.rid} in ${codec.mimeType}`);
    assert.ok(layer.framesEncoded > 0, `Chromium encoded frames of layer ${layer.rid}`);
  }
}

/** natter's receivers are exactly q/h/f on one transceiver, each with its own SSRC. */
function assertNatterLayers(summary) {
  const receivers = summary.media.receivers;
  assert.deepEqual(receivers.map((r) => r.rid).sort(), [...RIDS].sort(), "natter's stats have one receiver per rid");
  assert.equal(new Set(receivers.map((r) => r.transceiver)).size, 1, 'the three layers belong to one transceiver');
  assert.equal(new Set(receivers.map((r) => r.ssrc)).size, 3, 'each layer has its own SSRC');
}

describe('simulcast from headless Chromium to natter-io', () => {
  const dir = path.join(ARTIFACTS, 'simulcast');
  let browser;
  before(async () => {
    ffmpegTool('ffprobe');
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  for (const codec of CODECS) {
    const { ext } = codec;
    test(`Chromium's 1280x720 camera in three ${codec.codecName} layers (q/h/f) is recorded by natter to three files; ffprobe reads 320x180, 640x360, 1280x720 and frames in each`, async (t) => {
      const frames = 600;
      const layerFrames = 60;
      const { summary, chromium, files } = await recordSimulcast(t, browser, {
        codec, dir: path.join(dir, `${codec.codec}-clean`), name: `simulcast-${codec.codec}`, frames, layerFrames,
      });
      assertChromiumLayers(chromium, codec);
      assertNatterLayers(summary);
      for (const rid of RIDS) {
        assert.equal(files[rid].codec_name, codec.codecName, `video-${rid}.${ext} is ${codec.codecName}`);
        // How many frames each layer gets is Chromium's choice: on a loaded
        // machine its CPU adaptation encodes the f layer at a fraction of the
        // camera's rate (seen in CI: 47 f frames beside 280 q frames). What
        // natter owes is every frame Chromium encoded, less the few encoded
        // between the recorder's exit and the getStats call.
        const encoded = chromium.find((s) => s.rid === rid).framesEncoded;
        const read = Number(files[rid].nb_read_frames);
        assert.ok(read >= layerFrames, `ffprobe decodes the ${layerFrames} frames asked for of video-${rid}.${ext}: ${read}`);
        assert.ok(read >= encoded * 0.9 - 15, `video-${rid}.${ext} holds nearly every frame Chromium encoded in layer ${rid}: ${read} of ${encoded}`);
        assert.ok(summary.media.receivers.find((r) => r.rid === rid).frames_received > 0, `natter's stats count frames of layer ${rid}`);
      }
      assert.ok(summary.video_frames >= frames, `natter wrote the ${frames} frames asked for: ${summary.video_frames}`);
      for (const rid of RIDS) assert.equal(summary.layer_frames[rid], Number(files[rid].nb_read_frames), `ffprobe decodes every frame natter wrote of layer ${rid}`);
      assert.equal(RIDS.reduce((sum, rid) => sum + Number(files[rid].nb_read_frames), 0), summary.video_frames, 'ffprobe decodes every frame natter wrote, across the three files');
      const { q, h, f } = files;
      assert.equal(`${f.width}x${f.height}`, '1280x720', 'the f layer is the camera\'s full size');
      assert.equal(`${h.width}x${h.height}`, '640x360', 'the h layer is half the size (scaleResolutionDownBy 2)');
      assert.equal(`${q.width}x${q.height}`, '320x180', 'the q layer is a quarter of the size (scaleResolutionDownBy 4)');
    });

    test(`${codec.codecName}: with 5% loss in front of natter's socket, each layer is repaired by its own NACKs and RTX and still records`, async (t) => {
      let undo = () => {};
      try {
        const { summary, chromium, files } = await recordSimulcast(t, browser, {
          codec,
          dir: path.join(dir, `${codec.codec}-loss`),
          name: `simulcast-${codec.codec}-loss`,
          frames: 900,
          flowing: (port) => (undo = dropAtRandom(port, 0.05)),
        });
        t.diagnostic(`iptables:\n${execFileSync('iptables', ['-L', 'INPUT', '-v', '-n', '-x'])}`);
        assertChromiumLayers(chromium, codec);
        assertNatterLayers(summary);
        for (const layer of summary.media.receivers) {
          assert.ok(layer.nack_count > 0, `natter sent NACKs for layer ${layer.rid}`);
          // Chromium also probes bandwidth with RTX packets, loss or not: natter's RTX count alone proves no repair.
          assert.ok(layer.retransmitted_packets_received > 0, `natter received retransmissions (RTX) of layer ${layer.rid}`);
          assert.ok(layer.frames_dropped <= layer.frames_received / 20, `natter gave up on few frames of layer ${layer.rid}: ${layer.frames_dropped} of ${layer.frames_received}`);
        }
        // Chromium counts only retransmissions it sent for NACKs (0 per layer without loss).
        for (const layer of chromium) assert.ok(layer.retransmittedPacketsSent > 0, `Chromium retransmitted packets of layer ${layer.rid} (RTX)`);
        for (const rid of RIDS) assert.ok(Number(files[rid].nb_read_frames) > 0, `ffprobe decodes frames of video-${rid}.${ext}: ${files[rid].nb_read_frames}`);
      } finally {
        undo();
      }
    });
  }
});
