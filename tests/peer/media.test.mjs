// Media between headless Chromium and natter-io (issue 5, acceptance 2
// and 3): Chromium sends its fake camera (VP8, then H.264) and
// microphone to the record example, and ffprobe reads the files natter
// wrote; natter's ivf-send example sends VP8 from an IVF file and Opus
// from an Ogg file that ffmpeg made, and Chromium decodes them. Run by
// scripts/test-peer inside a network namespace with only `lo`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ARTIFACTS, launchBrowser, openPage, startEcho, until } from './harness.mjs';
import { ffmpegTool, outboundVideo, pageAt, postOfferHelper, recordCamera, startExample } from './media.mjs';

/**
 * In the page of `natter echo` (with the harness's `window.t`): the
 * camera and microphone, a data channel 'echo', offer, POST, answer.
 * `beforeAnswer(port)` runs between POST and setRemoteDescription with
 * the UDP port of natter's host candidate.
 */
async function callEcho(page, beforeAnswer = async () => {}) {
  const posted = await page.evaluate(async () => {
    const out = { stage: 'getUserMedia' };
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
      const pc = (window.pc = window.t.pc = new RTCPeerConnection());
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
      const video = pc.getTransceivers().find((t) => t.sender.track.kind === 'video');
      const params = video.sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      await video.sender.setParameters(params);
      window.reflected = new Promise((resolve) => pc.addEventListener('track', (e) => e.track.kind === 'video' && resolve(e.track)));
      // Chromium plays out (decodes) remote audio only for a sink.
      pc.addEventListener('track', (e) => e.track.kind === 'audio' && playAudio(e.track));
      const dc = (window.t.channels.echo = pc.createDataChannel('echo'));
      dc.binaryType = 'arraybuffer';
      window.echoOpen = new Promise((resolve) => dc.addEventListener('open', resolve, { once: true }));
      window.answer = await window.postOffer(pc, out);
      out.answer = window.answer.sdp;
      out.stage = 'posted';
    } catch (e) {
      out.error = `${out.stage}: ${e.message}`;
    }
    return out;
  });
  if (posted.error) return posted;
  const port = Number(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/m.exec(posted.answer)?.[1]);
  await beforeAnswer(port);
  return page.evaluate(async (posted) => {
    try {
      await window.pc.setRemoteDescription(window.answer);
      await Promise.race([window.echoOpen, new Promise((_, reject) => setTimeout(() => reject(new Error("'echo' did not open in 15 s")), 15000))]);
      return { ...posted, stage: 'open' };
    } catch (e) {
      return { ...posted, error: `setRemoteDescription/open: ${e.message}` };
    }
  }, posted);
}

/**
 * In the page: Chromium's decoding of the media natter reflects, polled
 * until `frames` video frames decoded and 1 s of audio (48,000 samples)
 * played out. How fast Chromium encodes its camera is its choice (its CPU
 * adaptation lowers the frame rate on a loaded machine), so the wait
 * gives up once Chromium has encoded `frames` frames and 3 s at the
 * camera's 30 fps more since it began, not after a fixed time.
 */
async function reflectedVideo(page, frames) {
  return page.evaluate(async (frames) => {
    await window.reflected;
    const encoded = (report) => [...report.values()].find((s) => s.type === 'outbound-rtp' && s.kind === 'video')?.framesEncoded ?? 0;
    const encodedBefore = encoded(await window.pc.getStats());
    // Chromium stalling altogether is a failure too, but not one to wait 10 minutes for.
    const deadline = Date.now() + 120000;
    for (;;) {
      const report = await window.pc.getStats();
      const v = [...report.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
      const a = [...report.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'audio');
      const out = {
        framesDecoded: v?.framesDecoded ?? 0, frameWidth: v?.frameWidth, frameHeight: v?.frameHeight,
        audioPacketsReceived: a?.packetsReceived ?? 0, audioSamples: a?.totalSamplesReceived ?? 0, concealedSamples: a?.concealedSamples ?? 0,
        framesEncoded: encoded(report) - encodedBefore,
      };
      if (out.framesDecoded >= frames && out.audioSamples >= 48000) return out;
      if (out.framesEncoded >= frames + 90 || Date.now() > deadline) {
        return { ...out, error: `Chromium encoded ${out.framesEncoded} frames meanwhile, but decoded ${out.framesDecoded} of ${frames} reflected frames and played ${out.audioSamples} of 48000 audio samples` };
      }
      await new Promise((resolve) => setTimeout(resolve, 200)); // getStats has no change event: poll
    }
  }, frames);
}

/**
 * Chromium played `samples` of audio (at least 1 s), of which under half
 * were concealment: loopback loses nothing, so concealment only covers
 * the start and packets a busy machine delivered late, while packets that
 * arrive but do not decode are all concealment.
 */
function assertDecodedAudio(samples, concealed, what) {
  assert.ok(samples >= 48000, `Chromium played at least 1 s of ${what}: ${samples} samples`);
  assert.ok(concealed < samples / 2, `Chromium decoded ${what}: ${concealed} of ${samples} samples were concealment`);
}

/** natter's receiving video stream in the echo's /status. */
async function natterVideoIn(echo) {
  const [connection] = await echo.status();
  return connection?.media?.receivers?.find((r) => r.frame_size);
}

describe('media between natter-io and headless Chromium', () => {
  let browser;
  const dir = path.join(ARTIFACTS, 'media');

  before(async () => {
    ffmpegTool('ffmpeg');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
  });

  for (const [codec, file, codecName] of [['vp8', 'video.ivf', 'vp8'], ['h264', 'video.h264', 'h264']]) {
    test(`Chromium's camera (${codec.toUpperCase()}) and microphone (Opus) are recorded by natter; ffprobe reads 640x480 and every frame`, (t) =>
      recordCamera(t, browser, { dir, codec, file, codecName }));
  }

  test("natter echo, answering as DTLS server, reflects Chromium's camera and microphone: Chromium decodes its own 640x480 video", async (t) => {
    const echo = await startEcho({ name: 'media-echo', args: ['--dtls-server'] });
    const { page, context } = await openPage(browser, echo, 'media-echo');
    await page.evaluate(postOfferHelper);
    try {
      const called = await callEcho(page);
      assert.ok(!called.error, `${called.error}\nanswer:\n${called.answer ?? '(none)'}\nlog: ${echo.logPath}`);
      assert.match(called.answer, /^m=video .*\r?\n(?:.*\r?\n)*?a=sendrecv/m, 'natter answers the video section sendrecv');
      const back = await reflectedVideo(page, 60);
      t.diagnostic(`Chromium decoding its reflected video: ${JSON.stringify(back)}`);
      t.diagnostic(`natter: ${JSON.stringify((await echo.status())[0]?.media)}`);
      assert.ok(!back.error, back.error);
      assert.equal(`${back.frameWidth}x${back.frameHeight}`, '640x480');
      assertDecodedAudio(back.audioSamples, back.concealedSamples, 'the microphone natter reflects');
      const burst = await page.evaluate(() => window.t.burst('echo', Array.from({ length: 100 }, (_, i) => 1 + i * 97), { seed: 3 }));
      assert.equal(burst.count, 100, 'the data channel echoes beside the media');
      assert.equal(burst.mismatchCount, 0);
      const stats = await page.evaluate(() => window.t.stats());
      assert.equal(stats.dtlsState, 'connected');
      assert.equal(stats.dtlsRole, 'client', "Chromium is the DTLS client: natter answered a=setup:passive");
      assert.match(called.answer, /^a=setup:passive/m);
    } finally {
      await context.close();
      await echo.stop();
    }
  });

  test('with 5% loss in front of natter\'s socket, NACK and RTX keep the video decoding at natter and the data channel delivers every message', async (t) => {
    const echo = await startEcho({ name: 'media-loss' });
    const { page, context } = await openPage(browser, echo, 'media-loss');
    await page.evaluate(postOfferHelper);
    const rules = [];
    const iptables = (args) => execFileSync('iptables', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const called = await callEcho(page, async (port) => {
        assert.ok(port > 0, "natter's answer has a 127.0.0.1 host candidate");
        for (const side of ['--dport', '--sport']) {
          const rule = ['INPUT', '-p', 'udp', side, String(port), '-m', 'statistic', '--mode', 'random', '--probability', '0.05', '-j', 'DROP'];
          try {
            iptables(['-I', ...rule]);
          } catch (e) {
            throw new Error(`iptables could not add the loss rule (needs root and iptables, which scripts/setup installs): ${e.stderr ?? e.message}`);
          }
          rules.push(rule);
        }
      });
      assert.ok(!called.error, `${called.error}\nlog: ${echo.logPath}`);
      const burst = await page.evaluate(() => window.t.burst('echo', Array.from({ length: 300 }, (_, i) => 1 + ((i * 7919) % 65536)), { seed: 5 }));
      assert.equal(burst.count, 300, 'every message of the reliable channel came back');
      assert.equal(burst.mismatchCount, 0, 'byte-exact and in order');
      // 150 frames are 5 s of the camera's 30 fps; under 5% loss on a loaded
      // machine Chromium's estimate and its CPU adaptation may lower the rate
      // to a few frames a second.
      const natter = await until(async () => {
        const video = await natterVideoIn(echo);
        return video?.frames_received >= 150 && video.retransmitted_packets_received > 0 && video;
      }, { timeout: 90000, what: 'natter to receive 150 frames with retransmissions', describe: async () => JSON.stringify(await natterVideoIn(echo)) });
      const chromium = await outboundVideo(page);
      const drops = execFileSync('iptables', ['-L', 'INPUT', '-v', '-n', '-x']).toString();
      t.diagnostic(`natter receiving Chromium's video: ${JSON.stringify(natter)}`);
      t.diagnostic(`Chromium sending: ${JSON.stringify(chromium)}`);
      t.diagnostic(`iptables:\n${drops}`);
      assert.ok(natter.nack_count > 0, 'natter sent NACKs');
      assert.ok(chromium.nackCount > 0, 'Chromium counted the NACKs');
      assert.ok(chromium.retransmittedPacketsSent > 0, 'Chromium retransmitted (RTX)');
      assert.ok(natter.frames_dropped <= natter.frames_received / 20, `natter gave up on few frames: ${natter.frames_dropped} of ${natter.frames_received}`);
      const back = await reflectedVideo(page, 30);
      assert.ok(!back.error, `Chromium decodes the video natter reflects over the lossy path: ${back.error}`);
    } finally {
      for (const rule of rules) iptables(['-D', ...rule]);
      await context.close();
      await echo.stop();
    }
  });

  test('natter sends VP8 from an IVF file and Opus from an Ogg file; Chromium decodes 320x240 frames and plays audio', async (t) => {
    const video = path.join(dir, 'send.ivf');
    const audio = path.join(dir, 'send.ogg');
    const ffmpeg = ffmpegTool('ffmpeg');
    execFileSync(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-t', '3', '-c:v', 'libvpx', '-g', '30', '-b:v', '500k', video]);
    execFileSync(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '3', '-c:a', 'libopus', '-b:a', '32k', audio]);
    const sender = await startExample('ivf-send', 'ivf-send', ['--video', video, '--audio', audio]);
    const context = await browser.newContext();
    try {
      const page = await pageAt(context, sender.url);
      const got = await page.evaluate(async () => {
        const out = { stage: 'offer' };
        try {
          const pc = (window.pc = new RTCPeerConnection());
          pc.addTransceiver('video', { direction: 'recvonly' });
          const { receiver } = pc.addTransceiver('audio', { direction: 'recvonly' });
          window.playAudio(receiver.track);
          const answer = await window.postOffer(pc, out);
          out.answer = answer.sdp;
          out.stage = 'setRemoteDescription';
          await pc.setRemoteDescription(answer);
          out.stage = 'decoding';
          const inbound = async () => {
            const report = await pc.getStats();
            const pick = (kind) => [...report.values()].find((s) => s.type === 'inbound-rtp' && s.kind === kind);
            const v = pick('video');
            const a = pick('audio');
            return {
              video: v && { framesDecoded: v.framesDecoded, frameWidth: v.frameWidth, frameHeight: v.frameHeight, packetsLost: v.packetsLost, codec: report.get(v.codecId)?.mimeType },
              audio: a && { packetsReceived: a.packetsReceived, totalSamplesReceived: a.totalSamplesReceived, concealedSamples: a.concealedSamples, codec: report.get(a.codecId)?.mimeType },
            };
          };
          const deadline = Date.now() + 20000;
          for (;;) {
            out.stats = await inbound();
            if ((out.stats.video?.framesDecoded ?? 0) >= 30 && (out.stats.audio?.totalSamplesReceived ?? 0) >= 48000) break;
            if (Date.now() > deadline) throw new Error('timed out waiting for 30 decoded frames and 1 s (48,000 samples) of audio played');
            await new Promise((resolve) => setTimeout(resolve, 200)); // getStats has no change event: poll
          }
          out.stage = 'done';
        } catch (e) {
          out.error = `${out.stage}: ${e.message}`;
        }
        return out;
      });
      t.diagnostic(`Chromium inbound: ${JSON.stringify(got.stats)}`);
      t.diagnostic(`natter: ${JSON.stringify(await sender.status())}`);
      assert.ok(!got.error, `${got.error}\nanswer:\n${got.answer ?? '(none)'}\nnatter: ${JSON.stringify(await sender.status())}\nlog: ${sender.logPath}`);
      assert.equal(got.stats.video.codec, 'video/VP8');
      assert.ok(got.stats.video.framesDecoded >= 30);
      assert.equal(`${got.stats.video.frameWidth}x${got.stats.video.frameHeight}`, '320x240', 'the frame size of the IVF file');
      assert.equal(got.stats.audio.codec, 'audio/opus');
      assertDecodedAudio(got.stats.audio.totalSamplesReceived, got.stats.audio.concealedSamples, "the Ogg file's Opus");
    } finally {
      await context.close();
      await sender.stop();
    }
  });
});
