// namespace: lo
// VP9 and AV1 between headless Chromium and natter-io (issue 18,
// acceptance 4), both ways: Chromium sends its fake camera in VP9
// profile 0, then AV1 (setCodecPreferences), with its microphone, to
// the record example, and ffprobe reads the IVF files natter wrote
// (codec, 640x480, every frame); natter's ivf-send example sends VP9
// and AV1 IVF files that ffmpeg made (libvpx-vp9, libaom-av1), and
// Chromium's getStats shows the codec, framesDecoded growing and the
// files' 320x240. Run by scripts/test-peer inside a network namespace
// with only `lo`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ARTIFACTS, launchBrowser } from './harness.mjs';
import { NATTER_FMTP, ffmpegTool, pageAt, recordCamera, startExample } from './media.mjs';

/** `frames` frames of ffmpeg's test pattern at 320x240, 30 fps, a keyframe each second, encoded by `encoder` into `file`. */
function encode(encoder, options, file, frames) {
  try {
    execFileSync(ffmpegTool('ffmpeg'), ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-frames:v', String(frames),
      '-c:v', encoder, '-g', '30', '-keyint_min', '30', '-b:v', '500k', ...options, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`ffmpeg could not encode with ${encoder} (Debian's ffmpeg has it: "apt-get install ffmpeg"): ${e.stderr ?? e.message}`);
  }
}

/**
 * In a page of ivf-send: a receive-only video transceiver offering only
 * `codec` (and RTX), offer, POST, answer; then Chromium's inbound video
 * statistics polled until `frames` frames are decoded, with the count
 * first seen decoding.
 */
async function receiveVideo(page, codec, frames) {
  return page.evaluate(async ([codec, fmtp, frames]) => {
    const out = { stage: 'offer' };
    try {
      const pc = (window.pc = new RTCPeerConnection());
      window.preferCodec(pc.addTransceiver('video', { direction: 'recvonly' }), codec, fmtp);
      const answer = await window.postOffer(pc, out);
      out.answer = answer.sdp;
      out.stage = 'setRemoteDescription';
      await pc.setRemoteDescription(answer);
      out.stage = 'decoding';
      const deadline = Date.now() + 20000;
      for (;;) {
        const report = await pc.getStats();
        const v = [...report.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
        out.video = v && { framesDecoded: v.framesDecoded, frameWidth: v.frameWidth, frameHeight: v.frameHeight, packetsLost: v.packetsLost, codec: report.get(v.codecId)?.mimeType };
        if (v?.framesDecoded > 0) out.firstDecoded ??= v.framesDecoded;
        if ((v?.framesDecoded ?? 0) >= frames) break;
        if (Date.now() > deadline) throw new Error(`timed out with ${v?.framesDecoded ?? 0} of ${frames} frames decoded`);
        await new Promise((resolve) => setTimeout(resolve, 200)); // getStats has no change event: poll
      }
      out.stage = 'done';
    } catch (e) {
      out.error = `${out.stage}: ${e.message}`;
    }
    return out;
  }, [codec, NATTER_FMTP[codec] ?? [], frames]);
}

describe('VP9 and AV1 between natter-io and headless Chromium', () => {
  let browser;
  const dir = path.join(ARTIFACTS, 'vp9-av1');

  before(async () => {
    ffmpegTool('ffprobe');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
  });

  for (const codec of ['vp9', 'av1']) {
    test(`Chromium's camera (${codec.toUpperCase()}) and microphone (Opus) are recorded by natter; ffprobe reads ${codec} at 640x480 and every frame`, (t) =>
      recordCamera(t, browser, { dir, codec, file: 'video.ivf', codecName: codec }));
  }

  for (const [codec, encoder, options] of [
    ['vp9', 'libvpx-vp9', ['-deadline', 'realtime', '-cpu-used', '8']],
    ['av1', 'libaom-av1', ['-cpu-used', '8']],
  ]) {
    test(`natter sends ${codec.toUpperCase()} from an IVF file ffmpeg made (${encoder}); Chromium decodes its 320x240 frames`, async (t) => {
      const file = path.join(dir, `send-${codec}.ivf`);
      encode(encoder, options, file, 90);
      const sender = await startExample('ivf-send', `ivf-send-${codec}`, ['--video', file]);
      const context = await browser.newContext();
      try {
        const page = await pageAt(context, sender.url);
        const got = await receiveVideo(page, codec, 60);
        const natter = await sender.status();
        t.diagnostic(`Chromium inbound: ${JSON.stringify(got.video)}, first decoding at ${got.firstDecoded}`);
        t.diagnostic(`natter: ${JSON.stringify(natter)}`);
        assert.ok(!got.error, `${got.error}\nanswer:\n${got.answer ?? '(none)'}\nnatter: ${JSON.stringify(natter)}\nlog: ${sender.logPath}`);
        assert.match(got.answer, new RegExp(`^a=rtpmap:\\d+ ${codec.toUpperCase()}/90000`, 'm'), `natter answered ${codec}`);
        assert.equal(got.video.codec, `video/${codec.toUpperCase()}`);
        assert.ok(got.video.framesDecoded >= 60 && got.video.framesDecoded > got.firstDecoded,
          `framesDecoded grew from ${got.firstDecoded} to ${got.video.framesDecoded}`);
        assert.equal(`${got.video.frameWidth}x${got.video.frameHeight}`, '320x240', 'the frame size of the IVF file');
        assert.deepEqual(natter.errors, []);
        assert.ok(natter.video_frames_sent >= 60, `natter sent ${natter.video_frames_sent} frames`);
      } finally {
        await context.close();
        await sender.stop();
      }
    });
  }

  test('ivf-send refuses an offer that prefers another codec than its file\'s', async () => {
    const file = path.join(dir, 'send-vp9-refused.ivf');
    encode('libvpx-vp9', ['-deadline', 'realtime', '-cpu-used', '8'], file, 10);
    const sender = await startExample('ivf-send', 'ivf-send-refused', ['--video', file]);
    const context = await browser.newContext();
    try {
      const page = await pageAt(context, sender.url);
      const got = await receiveVideo(page, 'vp8', 1);
      assert.match(got.error ?? '', /POST \/offer: 409 .*Vp9.*Vp8/, `the VP8 offer is refused with the reason: ${JSON.stringify(got)}`);
    } finally {
      await context.close();
      await sender.stop();
    }
  });
});
