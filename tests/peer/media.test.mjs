// Media between headless Chromium and natter-io (issue 5, acceptance 2
// and 3): Chromium sends its fake camera (VP8, then H.264) and
// microphone to the record example, and ffprobe reads the files natter
// wrote; natter's ivf-send example sends VP8 from an IVF file and Opus
// from an Ogg file that ffmpeg made, and Chromium decodes them. Run by
// scripts/test-peer inside a network namespace with only `lo`.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { freePort } from '../browser/harness.mjs';
import { ARTIFACTS, ECHO_BIN, launchBrowser, openPage, startEcho, until } from './harness.mjs';

const EXAMPLES = path.dirname(ECHO_BIN);

/** Fails with instructions when ffmpeg's tools are missing. */
function ffmpegTool(name) {
  try {
    execFileSync(name, ['-version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${name} is missing: install it with "apt-get install ffmpeg" (scripts/setup does)`);
  }
  return name;
}

/** ffprobe's view of the first stream of `kind` ('v' or 'a') in `file`, counting frames and packets. */
function probe(file, kind) {
  const out = execFileSync(ffmpegTool('ffprobe'), [
    '-v', 'error', '-count_frames', '-count_packets', '-select_streams', `${kind}:0`,
    '-show_entries', 'stream=codec_name,width,height,nb_read_frames,nb_read_packets,sample_rate', '-of', 'json', file,
  ]);
  const [stream] = JSON.parse(out).streams;
  assert.ok(stream, `ffprobe finds a ${kind === 'v' ? 'video' : 'audio'} stream in ${file}`);
  return stream;
}

/** An example of crates/natter-io on a free port, waiting for /healthz; its log in target/peer. */
async function startExample(example, name, args) {
  const bin = path.join(EXAMPLES, example);
  if (!fs.existsSync(bin)) throw new Error(`no ${example} example at ${bin}: run "cargo build --release -p natter-io --examples" (scripts/test-peer does)`);
  const port = await freePort();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${name}.log`);
  const log = fs.createWriteStream(logPath);
  const child = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--address', '127.0.0.1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1' },
  });
  let stdout = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.pipe(log);
  let exited = null;
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  const url = `http://127.0.0.1:${port}`;
  await until(async () => {
    if (exited) throw new Error(`${example} exited early (${JSON.stringify(exited)}); see ${logPath}`);
    return (await fetch(`${url}/healthz`)).ok;
  }, { timeout: 15000, interval: 50, what: `${example} on ${url}/healthz (log: ${logPath})` });
  return {
    url,
    logPath,
    exit,
    stdout: () => stdout,
    status: async () => (await fetch(`${url}/status`)).json(),
    async stop() {
      if (!exited) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * Installed in a page as `window.postOffer(pc, out)`: the offer set
 * locally, ICE gathering waited for (a complete offer), POSTed to
 * `/offer`; the answer it returns. `out.stage` says how far it got.
 */
function postOfferHelper() {
  /** Plays `track` in an <audio> element, so that Chromium decodes it. */
  window.playAudio = (track) => {
    const audio = document.body.appendChild(document.createElement('audio'));
    audio.srcObject = new MediaStream([track]);
    audio.play().catch((e) => console.error(`audio.play: ${e.message}`));
  };
  window.postOffer = async (pc, out) => {
    out.stage = 'offer';
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    });
    out.offer = pc.localDescription.sdp;
    out.stage = 'POST /offer';
    const res = await fetch('/offer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(pc.localDescription) });
    if (!res.ok) throw new Error(`POST /offer: ${res.status} ${await res.text()}`);
    return res.json();
  };
}

/** Opens `url` in a new page with `window.postOffer`. */
async function pageAt(context, url) {
  const page = await context.newPage();
  await page.goto(url);
  await page.evaluate(postOfferHelper);
  return page;
}

/**
 * In the page: getUserMedia, a VP8 or H.264 video sender (kept at its
 * resolution) and an Opus audio sender, offer, POST to /offer, answer.
 */
async function sendCamera(page, codec) {
  return page.evaluate(async (codec) => {
    const out = { stage: 'getUserMedia' };
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
      const pc = (window.pc = new RTCPeerConnection());
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
      const video = pc.getTransceivers().find((t) => t.sender.track.kind === 'video');
      const params = video.sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      await video.sender.setParameters(params);
      const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
      const wanted = codecs.filter((c) => c.mimeType.toLowerCase() === `video/${codec}` &&
        (codec !== 'h264' || /packetization-mode=1/.test(c.sdpFmtpLine ?? '') && /profile-level-id=42e01f/.test(c.sdpFmtpLine ?? '')));
      out.codecs = codecs.map((c) => `${c.mimeType} ${c.sdpFmtpLine ?? ''}`);
      if (wanted.length === 0) throw new Error(`Chromium has no ${codec}`);
      video.setCodecPreferences([...wanted, ...codecs.filter((c) => c.mimeType.toLowerCase() === 'video/rtx')]);
      const answer = await window.postOffer(pc, out);
      out.answer = answer.sdp;
      out.stage = 'setRemoteDescription';
      await pc.setRemoteDescription(answer);
      out.stage = 'done';
    } catch (e) {
      out.error = `${out.stage}: ${e.message}`;
    }
    return out;
  }, codec);
}

/**
 * In the page of the echo example (with the harness's `window.t`): the
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
 * played out.
 */
async function reflectedVideo(page, frames) {
  return page.evaluate(async (frames) => {
    await window.reflected;
    const deadline = Date.now() + 20000;
    for (;;) {
      const report = await window.pc.getStats();
      const v = [...report.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
      const a = [...report.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'audio');
      const out = {
        framesDecoded: v?.framesDecoded ?? 0, frameWidth: v?.frameWidth, frameHeight: v?.frameHeight,
        audioPacketsReceived: a?.packetsReceived ?? 0, audioSamples: a?.totalSamplesReceived ?? 0, concealedSamples: a?.concealedSamples ?? 0,
      };
      if (out.framesDecoded >= frames && out.audioSamples >= 48000) return out;
      if (Date.now() > deadline) return { ...out, error: `timed out with ${out.framesDecoded} of ${frames} frames decoded and ${out.audioSamples} of 48000 audio samples played` };
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

/** In the page: Chromium's outbound video statistics. */
async function outboundVideo(page) {
  return page.evaluate(async () => {
    const report = await window.pc.getStats();
    const out = [...report.values()].find((s) => s.type === 'outbound-rtp' && s.kind === 'video');
    const codec = out && report.get(out.codecId);
    return out && { framesEncoded: out.framesEncoded, frameWidth: out.frameWidth, frameHeight: out.frameHeight, nackCount: out.nackCount, pliCount: out.pliCount, retransmittedPacketsSent: out.retransmittedPacketsSent, codec: codec?.mimeType };
  });
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
    test(`Chromium's camera (${codec.toUpperCase()}) and microphone (Opus) are recorded by natter; ffprobe reads 640x480 and every frame`, async (t) => {
      const out = path.join(dir, `record-${codec}`);
      const frames = 90;
      const recorder = await startExample('record', `record-${codec}`, ['--out', out, '--frames', String(frames)]);
      const context = await browser.newContext();
      try {
        const page = await pageAt(context, recorder.url);
        const sent = await sendCamera(page, codec);
        assert.ok(!sent.error, `${sent.error}\ncodecs: ${sent.codecs?.join('\n')}\nanswer:\n${sent.answer ?? '(none)'}\nlog: ${recorder.logPath}`);
        const exited = await Promise.race([
          recorder.exit,
          new Promise((resolve) => setTimeout(() => resolve(null), 30000)),
        ]);
        const chromium = await outboundVideo(page);
        t.diagnostic(`Chromium outbound video: ${JSON.stringify(chromium)}`);
        assert.ok(exited, `the recorder finished ${frames} frames within 30 s: ${JSON.stringify(await recorder.status().catch((e) => e.message))}; log: ${recorder.logPath}`);
        assert.equal(exited.code, 0, `the recorder exited cleanly; log: ${recorder.logPath}`);
        const summary = JSON.parse(recorder.stdout().trim().split('\n').pop());
        t.diagnostic(`natter: ${JSON.stringify(summary)}`);
        assert.deepEqual(summary.errors, []);
        assert.equal(summary.video_frames, frames);
        assert.equal(chromium.codec.toLowerCase(), `video/${codec}`, 'Chromium encoded the codec asked for');
        assert.ok(summary.media.twcc_feedback_sent > 0, 'natter sent transport-wide congestion control feedback');
        assert.equal(summary.media.dropped.srtp_failed, 0);
        const video = probe(path.join(out, file), 'v');
        t.diagnostic(`ffprobe ${file}: ${JSON.stringify(video)}`);
        assert.equal(video.codec_name, codecName);
        assert.equal(`${video.width}x${video.height}`, '640x480', 'the fake camera\'s resolution');
        assert.ok(Number(video.nb_read_frames) >= frames, `ffprobe decodes at least ${frames} frames, got ${video.nb_read_frames}`);
        const audio = probe(path.join(out, 'audio.ogg'), 'a');
        t.diagnostic(`ffprobe audio.ogg: ${JSON.stringify(audio)}`);
        assert.equal(audio.codec_name, 'opus');
        // 90 frames at up to 30 fps: at least 2 s of 20 ms packets, less slack for the start.
        assert.ok(Number(audio.nb_read_frames) >= 50, `ffprobe decodes at least 50 Opus frames (1 s), got ${audio.nb_read_frames} of ${audio.nb_read_packets} packets`);
      } finally {
        await context.close();
        await recorder.stop();
      }
    });
  }

  test("the echo example, answering as DTLS server, reflects Chromium's camera and microphone: Chromium decodes its own 640x480 video", async (t) => {
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
      const natter = await until(async () => {
        const video = await natterVideoIn(echo);
        return video?.frames_received >= 150 && video.retransmitted_packets_received > 0 && video;
      }, { timeout: 30000, what: 'natter to receive 150 frames with retransmissions', describe: async () => JSON.stringify(await natterVideoIn(echo)) });
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
