// A rate-limited real path for the bandwidth-estimation tests
// (bwe.test.mjs: Chromium sends to natter; bwe-send.test.mjs: natter
// sends to Chromium) and bench (bench/bwe, bench/bwe-chromium.mjs),
// issue 12.
//
// The sender stays in the caller's network namespace ("A"); the
// receiver lives in a second namespace ("B") joined to A by a veth
// pair, 198.18.7.1 (A, `bwaN`) and 198.18.7.2 (B, `bwbN`); a receiving
// Chromium runs in B through `launchChromium()`:
//
//   sender (A) --bwaN: tc tbf (rate, drop-tail queue)--> natter-impair (B) --lo--> receiver (B)
//   sender (A) <----------------- bwbN: no limit ------- natter-impair (B) <--lo-- receiver (B)
//
// `tc tbf` on bwaN is the bottleneck (the kernel's queue; this kernel has
// no netem); natter-impair in B adds the propagation delay each way and
// random loss on the way in (crates/natter-impair). Media and feedback
// never share a queue. The receiver is reached only through the proxy:
// its description's candidates are replaced by the proxy's address, and
// the sender's candidates are removed from its own, so the receiver
// learns the sender as a peer-reflexive candidate at the proxy's
// upstream socket (whichever side offers).
//
// Needs root or passwordless sudo (`ip netns add`), iproute2's `tc` with
// tbf, and the natter-impair binary (cargo build --release -p natter-impair).

import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import { CHROMIUM, CHROMIUM_ARGS, ROOT, until } from '../browser/harness.mjs';
import { ARTIFACTS, loadChromium } from './harness.mjs';
import { ffmpegTool } from './media.mjs';

/**
 * Issue 12 acceptance 2's path, both ways (bwe.test.mjs, bwe-send.test.mjs):
 * a capacity of `limit` bit/s with a drop-tail queue of `queueMs` and
 * `oneWayMs` of delay each way; a call sends `callMs` at it, settled over
 * its last `windowMs`; then RFC 8867 §5.1's drop to its lowest capacity,
 * `dropped`, for `dropMs`, settled over its last `dropWindowMs`.
 */
export const ACCEPTANCE = {
  limit: 1_000_000, queueMs: 300, oneWayMs: 25, callMs: 20_000, windowMs: 10_000, dropped: 600_000, dropMs: 12_000, dropWindowMs: 6_000,
};

export const IMPAIR_BIN = path.resolve(ROOT, process.env.NATTER_IMPAIR_BIN || 'target/release/natter-impair');
export const SENDER_ADDRESS = '198.18.7.1';
export const RECEIVER_ADDRESS = '198.18.7.2';
const ROOT_USER = process.getuid() === 0;
const asRoot = (argv) => (ROOT_USER ? argv : ['sudo', '-n', ...argv]);
let made = 0;

function run(argv) {
  const [cmd, ...args] = asRoot(argv);
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    throw new Error(`${argv.join(' ')} failed (needs root or passwordless sudo, iproute2 and tc's tbf): ${e.stderr || e.message}`);
  }
}

/** `tc tbf` arguments for `bps` with a drop-tail queue of `queueMs` at that rate. */
function tbf(bps, queueMs) {
  // Two full-size Ethernet frames of burst: enough for tbf to send one
  // frame at a time at any rate here, small enough not to hide a queue.
  return ['tbf', 'rate', `${Math.round(bps)}bit`, 'burst', '3100', 'latency', `${queueMs}ms`];
}

/**
 * Makes the namespace B, the veth pair and the bottleneck of `rateBps`
 * with `queueMs` of queue. `close()` removes everything (the veth goes
 * with the namespace).
 */
export function openPath({ rateBps, queueMs = 300 }) {
  if (!fs.existsSync(IMPAIR_BIN)) {
    throw new Error(`no natter-impair at ${IMPAIR_BIN}: run "cargo build --release -p natter-impair" (scripts/test-peer does)`);
  }
  const n = `${process.pid}-${made++}`;
  const ns = `natter-bwe-${n}`;
  const [a, b] = [`bwa${made - 1}`, `bwb${made - 1}`];
  const children = [];
  const wrapper = path.join(os.tmpdir(), `${ns}-chromium`);
  run(['ip', 'netns', 'add', ns]);
  const path_ = {
    ns,
    device: a,
    rateBps,
    queueMs,
    proxies: [],
    /** argv that runs `argv` inside B as the caller's user. */
    inside(argv) {
      if (ROOT_USER) return ['ip', 'netns', 'exec', ns, ...argv];
      return ['sudo', '-n', 'ip', 'netns', 'exec', ns, 'setpriv', `--reuid=${process.getuid()}`, `--regid=${process.getgid()}`, '--init-groups', ...argv];
    },
    /** Spawns `argv` inside B; it is killed on close(). */
    spawn(argv, options = {}) {
      const [cmd, ...args] = this.inside(argv);
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
      children.push(child);
      return child;
    },
    /** Sets the bottleneck's rate. */
    setRate(bps) {
      run(['tc', 'qdisc', 'change', 'dev', a, 'root', ...tbf(bps, queueMs)]);
      this.rateBps = bps;
    },
    /** The bottleneck's counters: bytes and packets sent, drops, backlog bytes. */
    async counters() {
      const [cmd, ...args] = asRoot(['tc', '-s', '-j', 'qdisc', 'show', 'dev', a]);
      const out = await new Promise((resolve, reject) =>
        execFile(cmd, args, (e, stdout) => (e ? reject(e) : resolve(stdout))));
      const q = JSON.parse(out).find((x) => x.kind === 'tbf');
      return { at: performance.timeOrigin + performance.now(), bytes: q.bytes, packets: q.packets, drops: q.drops, backlog: q.backlog };
    },
    /**
     * natter-impair in B between the sender and `upstream` (an address
     * in B): `delayMs` each way, `loss` (0..1) at random toward the
     * receiver, and natter-impair's `up` settings (["jitter=5ms"]).
     * Resolves to the proxy's address on the veth; its counter lines
     * (every second) collect in `proxyLines` (the last proxy's) and
     * `proxies[i]`.
     */
    async proxy(upstream, { delayMs, loss = 0, seed = 1, up = [] }) {
      const argv = [IMPAIR_BIN, '--listen', `${RECEIVER_ADDRESS}:0`, '--upstream', upstream, '--delay', `${delayMs}ms`, '--seed', String(seed), '--stats-interval', '1s'];
      if (loss > 0) argv.push('--up', `loss=${(loss * 100).toFixed(3)}%`);
      for (const setting of up) argv.push('--up', setting);
      const child = this.spawn(argv);
      let stderr = '';
      child.stderr.on('data', (d) => { stderr += d; });
      const lines = readline.createInterface({ input: child.stdout });
      const collected = (this.proxyLines = []);
      this.proxies.push(collected);
      return new Promise((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`natter-impair exited (${code}): ${stderr}`)));
        lines.on('line', (line) => {
          collected.push(line);
          const m = /^listening on (\S+)/.exec(line);
          if (m) resolve(m[1]);
        });
      });
    },
    /**
     * launchWithCamera() inside B: a wrapper script runs Chromium there
     * (`ip netns exec`), and playwright drives it over the pipes the
     * wrapper hands on. Close the browser before the path.
     */
    launchChromium() {
      fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${this.inside([CHROMIUM]).join(' ')} "$@"\n`, { mode: 0o755 });
      return launchWithCamera({ executablePath: wrapper });
    },
    close() {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(wrapper, { force: true });
      // The veth first, at once: a namespace's devices go some time after
      // `ip netns del`, and the next path reuses the addresses.
      for (const argv of [['ip', 'link', 'del', a], ['ip', 'netns', 'del', ns]]) {
        try {
          run(argv);
        } catch {
          // already gone
        }
      }
    },
  };
  try {
    run(['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', ns]);
    run(['ip', 'addr', 'add', `${SENDER_ADDRESS}/24`, 'dev', a]);
    run(['ip', 'link', 'set', a, 'up']);
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    run(['ip', '-n', ns, 'addr', 'add', `${RECEIVER_ADDRESS}/24`, 'dev', b]);
    run(['ip', '-n', ns, 'link', 'set', b, 'up']);
    run(['tc', 'qdisc', 'add', 'dev', a, 'root', ...tbf(rateBps, queueMs)]);
  } catch (e) {
    path_.close();
    throw e;
  }
  return path_;
}

// ---- the camera ----------------------------------------------------------------------

/**
 * A second of 1280x720 video at 30 fps for Chromium's fake camera
 * (`--use-file-for-fake-video-capture`): ffmpeg's testsrc2 with fresh
 * noise in every frame. Chromium's built-in pattern compresses to well
 * under a megabit at 720p, so its encoder could not fill the links
 * here; this content takes whatever rate the estimator allows.
 */
export function cameraFile() {
  const file = path.join(ARTIFACTS, 'bwe-camera-720p.y4m');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    execFileSync(ffmpegTool('ffmpeg'), ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
      '-vf', 'noise=alls=25:allf=t+u', '-frames:v', '30', '-pix_fmt', 'yuv420p', `${file}.part.y4m`]);
    fs.renameSync(`${file}.part.y4m`, file);
  }
  return file;
}

/**
 * Headless Chromium with cameraFile() as its camera; `executablePath`
 * runs it elsewhere (the path's launchChromium(): inside B).
 */
export async function launchWithCamera({ executablePath = CHROMIUM } = {}) {
  const chromium = loadChromium();
  const args = [...CHROMIUM_ARGS, `--use-file-for-fake-video-capture=${cameraFile()}`];
  return chromium.launch({ executablePath, headless: true, args });
}

// ---- SDP ----------------------------------------------------------------------------

/** The SDP without its candidate lines. */
export const withoutCandidates = (sdp) => sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n');

/** The first UDP host candidate `address:port` of `sdp` on `ip`. */
export function candidateOn(sdp, ip) {
  const m = new RegExp(`a=candidate:\\S+ 1 udp \\d+ ${ip.replace(/\./g, '\\.')} (\\d+) typ host`, 'i').exec(sdp);
  return m && `${ip}:${m[1]}`;
}

/** The SDP with its candidates replaced by one host candidate at `address` ("ip:port"). */
export function onlyCandidate(sdp, address) {
  const [ip, port] = address.split(':');
  const out = [];
  for (const line of sdp.split('\r\n')) {
    if (line.startsWith('a=candidate:')) continue;
    out.push(line);
    // After every section's ICE credentials: one candidate.
    if (line.startsWith('a=ice-pwd:')) out.push(`a=candidate:1 1 udp 2130706431 ${ip} ${port} typ host`);
  }
  return out.join('\r\n');
}

/** The SDP without transport-wide congestion control (its rtcp-fb and header extension). */
export const withoutTransportCc = (sdp) => sdp.split('\r\n')
  .filter((l) => !/^a=rtcp-fb:\S+ transport-cc/.test(l) && !/^a=extmap:\d+\S* http:\/\/www\.ietf\.org\/id\/draft-holmer-rmcat-transport-wide-cc-extensions-01/.test(l))
  .join('\r\n');

// ---- in the page ----------------------------------------------------------------------

/**
 * Installed in a page (playwright serializes this one function, so it
 * holds everything the page needs). Chromium sending its camera
 * (bwe.test.mjs, bench/bwe-chromium.mjs): `window.bwe.send(maxBitrate)`
 * gets the 1280x720 fake camera, adds it (VP8, resolution kept) with
 * that maximum, and returns the complete offer; `setMaxBitrate(bps)`.
 * Chromium receiving video, offering (bwe-send.test.mjs):
 * `window.bwe.receive()`, the complete offer of one video section it
 * receives in VP8 (and RTX), played in a <video>. Either applies the
 * answer with `window.bwe.answer(sdp)`. Chromium receiving, answering
 * (bench/bwe-chromium.mjs): `window.bwe.answerOffer(offer)`, the
 * complete answer.
 *
 * `window.bwe.sample(kind)` starts a 250 ms getStats() sampler into
 * `window.bwe.samples`: the selected pair's availableOutgoingBitrate and
 * currentRoundTripTime, and for 'outbound' (the default) the video
 * outbound-rtp's bytes (payload and headers), packets, target bitrate,
 * frame size and quality limitation, and remote-inbound-rtp's RTT and
 * loss (from the receiver's RTCP reports); for 'inbound' the video
 * inbound-rtp's bytes (payload and headers), packets received and lost,
 * jitter buffer delay and emitted count, frames decoded and dropped,
 * freezes, NACKs and frame size.
 */
export function pageHelpers() {
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
  });
  const vp8 = (capabilities) => capabilities.codecs.filter((c) => /^video\/(vp8|rtx)$/i.test(c.mimeType));
  const outbound = (all) => {
    const out = all.find((s) => s.type === 'outbound-rtp' && s.kind === 'video');
    const remote = all.find((s) => s.type === 'remote-inbound-rtp' && s.kind === 'video');
    return {
      bytes: out ? out.bytesSent + out.headerBytesSent : 0,
      packets: out?.packetsSent ?? 0,
      target: out?.targetBitrate,
      width: out?.frameWidth,
      height: out?.frameHeight,
      limitation: out?.qualityLimitationReason,
      remoteRtt: remote?.roundTripTime,
      remoteLost: remote?.packetsLost,
    };
  };
  const inbound = (all) => {
    const s = all.find((x) => x.type === 'inbound-rtp' && x.kind === 'video') ?? {};
    return {
      bytes: (s.bytesReceived ?? 0) + (s.headerBytesReceived ?? 0),
      packets: s.packetsReceived ?? 0,
      lost: s.packetsLost ?? 0,
      jitterBufferDelay: s.jitterBufferDelay ?? 0,
      jitterBufferEmitted: s.jitterBufferEmittedCount ?? 0,
      framesDecoded: s.framesDecoded ?? 0,
      framesDropped: s.framesDropped ?? 0,
      freezes: s.freezeCount ?? 0,
      nacks: s.nackCount ?? 0,
      width: s.frameWidth,
      height: s.frameHeight,
    };
  };
  window.bwe = {
    samples: [],
    async send(maxBitrate) {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 30 } });
      const pc = (window.pc = new RTCPeerConnection());
      const [track] = stream.getVideoTracks();
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream], sendEncodings: [{ maxBitrate }] });
      const params = transceiver.sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      await transceiver.sender.setParameters(params);
      transceiver.setCodecPreferences(vp8(RTCRtpSender.getCapabilities('video')));
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      return pc.localDescription.sdp;
    },
    async receive() {
      const pc = (window.pc = new RTCPeerConnection());
      const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
      transceiver.setCodecPreferences(vp8(RTCRtpReceiver.getCapabilities('video')));
      pc.addEventListener('track', ({ track }) => {
        const video = document.body.appendChild(document.createElement('video'));
        video.muted = true;
        video.srcObject = new MediaStream([track]);
        video.play().catch((e) => console.error(`video.play: ${e.message}`));
      });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      return pc.localDescription.sdp;
    },
    async answer(sdp) {
      await window.pc.setRemoteDescription({ type: 'answer', sdp });
    },
    async answerOffer(sdp) {
      const pc = (window.pc = new RTCPeerConnection());
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      return pc.localDescription.sdp;
    },
    async setMaxBitrate(maxBitrate) {
      const sender = window.pc.getSenders().find((s) => s.track?.kind === 'video');
      const params = sender.getParameters();
      params.encodings[0].maxBitrate = maxBitrate;
      await sender.setParameters(params);
    },
    sample(kind = 'outbound') {
      const take = async () => {
        const report = await window.pc.getStats();
        const all = [...report.values()];
        const transport = all.find((s) => s.type === 'transport');
        const pair = transport && report.get(transport.selectedCandidatePairId);
        window.bwe.samples.push({
          t: performance.timeOrigin + performance.now(),
          available: pair?.availableOutgoingBitrate,
          pairRtt: pair?.currentRoundTripTime,
          state: window.pc.connectionState,
          ...(kind === 'inbound' ? inbound(all) : outbound(all)),
        });
      };
      window.bwe.timer = setInterval(() => take().catch((e) => console.error(`getStats: ${e.message}`)), 250);
    },
  };
}

/** Opens a page on `http://127.0.0.1/` served by playwright itself (a secure context, no server needed in any namespace). */
export async function blankPage(context, helpers) {
  const page = await context.newPage();
  await page.route('http://127.0.0.1/**', (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>natter bwe</title>' }));
  await page.goto('http://127.0.0.1/');
  if (helpers) await page.evaluate(helpers);
  return page;
}

// ---- figures --------------------------------------------------------------------------

export const median = (xs) => percentile(xs, 0.5);

/**
 * What the bottleneck did over `samples` (sampleBottleneck()'s, already
 * cut to a window) at a capacity of `limit`: bit/s it carried (`link`),
 * its queue's delay p50 and p95 (the backlog at the rate, ms), and the
 * share of the packets offered to it that it dropped.
 */
export function bottleneckFigures(samples, limit) {
  const [first, last] = [samples[0], samples.at(-1)];
  const queue = samples.map((s) => (s.backlog * 8 * 1000) / limit);
  return {
    link: ((last.bytes - first.bytes) * 8) / ((last.at - first.at) / 1000),
    queueP50: percentile(queue, 0.5),
    queueP95: percentile(queue, 0.95),
    drops: (last.drops - first.drops) / Math.max(1, last.packets - first.packets + last.drops - first.drops),
  };
}

export function percentile(xs, p) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.round((s.length - 1) * p)] : NaN;
}

/**
 * Samples the bottleneck's counters every `intervalMs` until stopped;
 * `samples[i].at` is ms since the epoch, as the page's samples' `t`.
 */
export function sampleBottleneck(limited, intervalMs = 200) {
  const samples = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push(await limited.counters());
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** One line per `stepMs` of the samples: estimate, encoder target, sent kbit/s, RTT ms. */
export function timeline(samples, stepMs = 2000) {
  const first = samples.find((s) => s.bytes > 0) ?? samples[0];
  const parts = [];
  let prev = first;
  for (const s of samples) {
    if (s.t - prev.t < stepMs) continue;
    const sent = ((s.bytes - prev.bytes) * 8) / (s.t - prev.t);
    parts.push(`${((s.t - first.t) / 1000).toFixed(0)}s ${Math.round((s.available ?? 0) / 1000)}/${Math.round((s.target ?? 0) / 1000)}/${Math.round(sent)}/${Math.round((s.remoteRtt ?? 0) * 1000)}`);
    prev = s;
  }
  return `t estimate/target/sent kbit/s/RTT ms: ${parts.join(', ')}`;
}

export { until };
