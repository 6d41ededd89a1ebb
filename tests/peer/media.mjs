// Helpers of the media tests (media.test.mjs, vp9-av1.test.mjs):
// natter-io's record and ivf-send examples on free ports, ffmpeg and
// ffprobe, pages that POST their offer, Chromium's camera sent in one
// codec and recorded by natter, Chromium's statistics.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { freePort } from '../browser/harness.mjs';
import { ARTIFACTS, EXAMPLES, until } from './harness.mjs';

/** Fails with instructions when ffmpeg's tools are missing. */
export function ffmpegTool(name) {
  try {
    execFileSync(name, ['-version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${name} is missing: install it with "apt-get install ffmpeg" (scripts/setup does)`);
  }
  return name;
}

/** ffprobe's view of the first stream of `kind` ('v' or 'a') in `file`, counting frames and packets. */
export function probe(file, kind) {
  const out = execFileSync(ffmpegTool('ffprobe'), [
    '-v', 'error', '-count_frames', '-count_packets', '-select_streams', `${kind}:0`,
    '-show_entries', 'stream=codec_name,width,height,nb_read_frames,nb_read_packets,sample_rate', '-of', 'json', file,
  ]);
  const [stream] = JSON.parse(out).streams;
  assert.ok(stream, `ffprobe finds a ${kind === 'v' ? 'video' : 'audio'} stream in ${file}`);
  return stream;
}

/**
 * An example of crates/natter-io on a free port, waiting for /healthz;
 * its log in target/peer. Its ICE host address is `address`.
 */
export async function startExample(example, name, args, { address = '127.0.0.1' } = {}) {
  const bin = path.join(EXAMPLES, example);
  if (!fs.existsSync(bin)) throw new Error(`no ${example} example at ${bin}: run "cargo build --release -p natter-io --examples" (scripts/test-peer does)`);
  const port = await freePort();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${name}.log`);
  const log = fs.createWriteStream(logPath);
  const child = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--address', address, ...args], {
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
export function postOfferHelper() {
  /** Plays `track` in an <audio> element, so that Chromium decodes it. */
  window.playAudio = (track) => {
    const audio = document.body.appendChild(document.createElement('audio'));
    audio.srcObject = new MediaStream([track]);
    audio.play().catch((e) => console.error(`audio.play: ${e.message}`));
  };
  /**
   * Has `transceiver` offer only `codec` (whose fmtp matches every
   * pattern of `fmtp`) and RTX, as natter sends the first codec offered.
   */
  window.preferCodec = (transceiver, codec, fmtp) => {
    const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
    const wanted = codecs.filter((c) => c.mimeType.toLowerCase() === `video/${codec}` &&
      fmtp.every((p) => new RegExp(p).test(c.sdpFmtpLine ?? '')));
    if (wanted.length === 0) throw new Error(`Chromium has no ${codec} ${fmtp.join(';')}: ${codecs.map((c) => `${c.mimeType} ${c.sdpFmtpLine ?? ''}`).join(', ')}`);
    transceiver.setCodecPreferences([...wanted, ...codecs.filter((c) => c.mimeType.toLowerCase() === 'video/rtx')]);
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
export async function pageAt(context, url) {
  const page = await context.newPage();
  await page.goto(url);
  await page.evaluate(postOfferHelper);
  return page;
}

/**
 * The format parameters (as patterns) of the one variant of a codec
 * natter takes: H.264 constrained baseline in packetization mode 1, VP9
 * profile 0, AV1 Main profile.
 */
export const NATTER_FMTP = {
  h264: ['packetization-mode=1', 'profile-level-id=42e01f'],
  vp9: ['profile-id=0'],
  av1: ['profile=0'],
};

/**
 * In the page: getUserMedia, a video sender in `codec` ('vp8', 'vp9',
 * 'h264', 'av1'; the variant natter takes) (kept at its
 * resolution) and an Opus audio sender, offer, POST to /offer, answer.
 */
export async function sendCamera(page, codec) {
  return page.evaluate(async ([codec, fmtp]) => {
    const out = { stage: 'getUserMedia' };
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
      const pc = (window.pc = new RTCPeerConnection());
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
      const video = pc.getTransceivers().find((t) => t.sender.track.kind === 'video');
      const params = video.sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      await video.sender.setParameters(params);
      window.preferCodec(video, codec, fmtp);
      const answer = await window.postOffer(pc, out);
      out.answer = answer.sdp;
      out.stage = 'setRemoteDescription';
      await pc.setRemoteDescription(answer);
      out.stage = 'done';
    } catch (e) {
      out.error = `${out.stage}: ${e.message}`;
    }
    return out;
  }, [codec, NATTER_FMTP[codec] ?? []]);
}

/** In the page: Chromium's outbound video statistics. */
export async function outboundVideo(page) {
  return page.evaluate(async () => {
    const report = await window.pc.getStats();
    const out = [...report.values()].find((s) => s.type === 'outbound-rtp' && s.kind === 'video');
    const codec = out && report.get(out.codecId);
    return out && { framesEncoded: out.framesEncoded, frameWidth: out.frameWidth, frameHeight: out.frameHeight, nackCount: out.nackCount, pliCount: out.pliCount, retransmittedPacketsSent: out.retransmittedPacketsSent, codec: codec?.mimeType };
  });
}

/**
 * Chromium's camera in `codec` and its microphone recorded by natter's
 * record example into `dir`; checks natter's summary, that Chromium
 * encoded `codec`, and what ffprobe decodes of `file` (`codecName`,
 * 640x480, `frames` frames) and of the Opus file.
 */
export async function recordCamera(t, browser, { dir, codec, file, codecName, frames = 90 }) {
  const out = path.join(dir, `record-${codec}`);
  const recorder = await startExample('record', `record-${codec}`, ['--out', out, '--frames', String(frames)]);
  const context = await browser.newContext();
  try {
    const page = await pageAt(context, recorder.url);
    const sent = await sendCamera(page, codec);
    assert.ok(!sent.error, `${sent.error}\nanswer:\n${sent.answer ?? '(none)'}\nlog: ${recorder.logPath}`);
    const exited = await recorded(recorder, page, frames);
    const chromium = await outboundVideo(page);
    t.diagnostic(`Chromium outbound video: ${JSON.stringify(chromium)}`);
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
}

/**
 * How Chromium encodes `frames` frames is its choice: on a loaded machine
 * its CPU adaptation lowers the camera's frame rate (the resolution is
 * kept), a few frames a second for VP9 and AV1. natter owes a recording
 * of what it was sent: waits for the recorder to exit after `frames`
 * frames, and fails once Chromium has encoded `frames` more than that
 * (about 3 s at the camera's 30 fps, for the connection's start and the
 * first keyframe) and the recorder is still short. The recorder's exit.
 */
async function recorded(recorder, page, frames) {
  let exited = null;
  recorder.exit.then((e) => { exited = e; });
  // Chromium stalling altogether is a failure too, but not one to wait 10 minutes for.
  const deadline = Date.now() + 120000;
  for (;;) {
    const encoded = (await outboundVideo(page).catch(() => undefined))?.framesEncoded ?? 0;
    if (exited) return exited;
    if (encoded >= 2 * frames || Date.now() > deadline) {
      const status = await recorder.status().catch((e) => e.message);
      assert.fail(`the recorder finished ${frames} frames while Chromium encoded ${2 * frames}: Chromium encoded ${encoded}, natter recorded ${JSON.stringify(status)}; log: ${recorder.logPath}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200)); // getStats has no change event: poll
  }
}

/**
 * Drops `probability` of the UDP datagrams to and from `port` with
 * iptables' `statistic` match (this kernel has no netem); returns what
 * removes the rules again.
 */
export function dropAtRandom(port, probability) {
  const iptables = (args) => execFileSync('iptables', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const added = [];
  const undo = () => added.splice(0).forEach((rule) => iptables(['-D', ...rule]));
  try {
    for (const side of ['--dport', '--sport']) {
      const rule = ['INPUT', '-p', 'udp', side, String(port), '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP'];
      iptables(['-I', ...rule]);
      added.push(rule);
    }
  } catch (e) {
    undo();
    throw new Error(`iptables could not add a loss rule (needs root and iptables, which scripts/setup installs): ${e.stderr ?? e.message}`);
  }
  return undo;
}
