// namespace: veth
// Issue 12, acceptance 2: natter sends video to Chromium through a
// 1 Mbit/s `tc tbf` bottleneck with a 300 ms drop-tail queue and 25 ms
// of delay each way from natter-impair (bwe-path.mjs draws the path;
// natter is the sender in this namespace, Chromium receives in the
// path's second one). natter-io's ivf-send example with `--adapt` sends
// one VP8 stream from a ladder of files of one picture at several
// bitrates, choosing (natter-sfu's layer selector) the file that natter's
// target bitrate covers, so what natter sends follows its estimate;
// Chromium's transport-wide CC feedback is what that estimate runs on.
// natter's estimate must settle within 20% of the limit, and Chromium
// must decode the video with little loss and a short jitter buffer. The
// call then goes through RFC 8867 §5.1's drop of the capacity to
// 0.6 Mbit/s (`tc qdisc change`), where the same must hold.
//
// Prints, for each phase over its last seconds: natter's estimate
// (median and range of its 500 ms lines), the files it chose and what
// it sent, what crossed the bottleneck, the queue's delay (tbf's backlog
// at the rate) p50/p95, tbf's drops, and Chromium's inbound-rtp: loss,
// jitter buffer delay per frame, frames decoded a second, NACKs,
// freezes. Runs as root or with passwordless sudo (a second namespace).
//
// In scripts/test-peer's run since b092f69: natter wants the ladder's
// top file (1.57 Mbit/s with overhead) and sends a lower one; it used to
// probe every 2 s with clusters the bottleneck queued (1 run in 8 passed:
// queue p50 69-205 ms, jitter buffer up to 187 ms a frame), and each
// overuse a burst caused cut the estimate to 0.85 of the lower file's
// throughput. Probes that find nothing now back off to every 8 s, and a
// held-back sender's decrease starts from its estimate
// (crates/natter/src/congestion/probe.rs, aimd.rs). 2026-12-07: 5 runs
// in a row passed (the last 3 as this file): estimates at 1 Mbit/s
// 818-1002 kbit/s, at 0.6 Mbit/s 583-623; queue p50 0-15 ms, p95
// 68-259 ms; jitter buffer 16-41 ms a frame. About 40 s a run.
// A fresh-clone CI run then failed it (tbf dropped 5.44% at 1 Mbit/s):
// the pacer charged a probe's padding at the size it asked for (50 bytes
// to complete a cluster's packet count) while natter sent RTX copies of
// whole video packets, so clusters left as bursts the bottleneck
// queued; and probes asked for at once for several reasons stacked up.
// Back in scripts/test-peer's run after the fix (pacer.rs, probe.rs):
// 5 runs in a row with one or two busy loops on a loaded 2-core machine,
// estimates at 1 Mbit/s 885-1004 kbit/s, at 0.6 Mbit/s 533-597; tbf
// drops 0.00% in all.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { ARTIFACTS } from './harness.mjs';
import {
  ACCEPTANCE, RECEIVER_ADDRESS, SENDER_ADDRESS, blankPage, bottleneckFigures, candidateOn, median, onlyCandidate, openPath,
  pageHelpers, sampleBottleneck, until, withoutCandidates,
} from './bwe-path.mjs';
import { ffmpegTool, startExample } from './media.mjs';

const {
  limit: LIMIT, queueMs: QUEUE_MS, oneWayMs: ONE_WAY_MS, callMs: CALL_MS, windowMs: WINDOW_MS,
  dropped: DROPPED, dropMs: DROP_MS, dropWindowMs: DROP_WINDOW_MS,
} = ACCEPTANCE;
/** The ladder's bitrates, kbit/s: steps of about 20% around both capacities, up to above the first. */
const LADDER_KBPS = [250, 450, 650, 850, 1100, 1500];
const FPS = 30;

/**
 * The ladder: 3 s of ffmpeg's testsrc2 at 480x270 with fresh noise in
 * every frame (so that the encoder reaches each rate), one VP8 file per
 * rate in constant-bitrate mode, a keyframe a second in all (a switch
 * waits at most that) of at most 3 times an average frame (libvpx's
 * max-intra-rate, as a real-time encoder caps them: a keyframe is a
 * burst the bottleneck queues). Made once into target/peer.
 */
function ladder() {
  const encode = (k) => ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-g', String(FPS), '-keyint_min', String(FPS),
    '-max-intra-rate', '300', '-b:v', `${k}k`, '-minrate', `${k}k`, '-maxrate', `${k}k`, '-bufsize', `${k / 2}k`, '-frames:v', String(3 * FPS)];
  const key = createHash('sha1').update(JSON.stringify(LADDER_KBPS.map(encode))).digest('hex').slice(0, 8);
  const dir = path.join(ARTIFACTS, `bwe-send-ladder-${key}`);
  const files = LADDER_KBPS.map((k) => path.join(dir, `${k}k.ivf`));
  if (files.every((f) => fs.existsSync(f))) return files;
  fs.mkdirSync(dir, { recursive: true });
  const outputs = LADDER_KBPS.flatMap((k, i) => ['-map', '0', ...encode(k), '-y', `${files[i]}.part.ivf`]);
  try {
    execFileSync(ffmpegTool('ffmpeg'), ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=480x270:rate=${FPS},noise=alls=12:allf=t+u`, ...outputs],
      { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`ffmpeg could not encode VP8 (Debian's ffmpeg has libvpx: "apt-get install ffmpeg"): ${e.stderr ?? e.message}`);
  }
  files.forEach((f) => fs.renameSync(`${f}.part.ivf`, f));
  return files;
}

/** ivf-send's JSON lines so far: `{t_ms, unix_ms, target_bps, layer, layer_bps, sent_bps}` every 500 ms. */
const natterLines = (natter) => natter.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

/**
 * The figures of the last `windowMs` before `end` (ms since the epoch)
 * at a capacity of `limit`: natter's lines, the bottleneck's samples
 * and the page's.
 */
function figures({ lines, link, samples, end, limit, windowMs }) {
  const from = end - windowMs;
  const mine = lines.filter((l) => l.unix_ms > from && l.unix_ms <= end);
  const linkWindow = link.filter((s) => s.at >= from && s.at <= end);
  const pageWindow = samples.filter((s) => s.t >= from && s.t <= end);
  const [p0, p1] = [pageWindow[0], pageWindow.at(-1)];
  const seconds = (p1.t - p0.t) / 1000;
  const received = p1.packets - p0.packets;
  const lost = p1.lost - p0.lost;
  return {
    limit,
    estimate: median(mine.map((l) => l.target_bps)),
    estimateMax: Math.max(...mine.map((l) => l.target_bps)),
    estimateMin: Math.min(...mine.map((l) => l.target_bps)),
    natterSent: median(mine.map((l) => l.sent_bps)),
    layers: [...new Set(mine.map((l) => l.layer_bps))].map((b) => Math.round(b / 1000)).join('/'),
    ...bottleneckFigures(linkWindow, limit),
    received: ((p1.bytes - p0.bytes) * 8) / seconds,
    loss: lost / Math.max(1, received + lost),
    jitterBufferMs: (1000 * (p1.jitterBufferDelay - p0.jitterBufferDelay)) / Math.max(1, p1.jitterBufferEmitted - p0.jitterBufferEmitted),
    fps: (p1.framesDecoded - p0.framesDecoded) / seconds,
    framesDropped: p1.framesDropped - p0.framesDropped,
    freezes: p1.freezes - p0.freezes,
    nacks: p1.nacks - p0.nacks,
    rttMs: median(pageWindow.map((s) => s.pairRtt * 1000)),
    frame: `${p1.width}x${p1.height}`,
  };
}

function describePhase(what, f) {
  const kbps = (x) => `${Math.round(x / 1000)} kbit/s`;
  return `${what}: natter's estimate ${kbps(f.estimate)} (${kbps(f.estimateMin)}-${kbps(f.estimateMax)}), files ${f.layers} kbit/s, natter sent ${kbps(f.natterSent)} (frames),` +
    ` bottleneck carried ${kbps(f.link)} (${((100 * f.link) / f.limit).toFixed(1)}% of ${kbps(f.limit)}), queue p50 ${f.queueP50.toFixed(0)} ms p95 ${f.queueP95.toFixed(0)} ms,` +
    ` tbf drops ${(100 * f.drops).toFixed(2)}%; Chromium received ${kbps(f.received)}, loss ${(100 * f.loss).toFixed(2)}%, jitter buffer ${f.jitterBufferMs.toFixed(0)} ms a frame,` +
    ` ${f.fps.toFixed(1)} frames decoded a second (${f.frame}), ${f.framesDropped} dropped, ${f.freezes} freezes, ${f.nacks} NACKs, RTT ${f.rttMs.toFixed(0)} ms`;
}

/**
 * Every 2 s: natter's estimate, the file's rate and what it sent (kbit/s),
 * and the longest queue of the bottleneck's samples since the last (ms
 * at `rateAt(ms since the epoch)`).
 */
function timeline(lines, link, rateAt) {
  const parts = [];
  let since = 0;
  for (const l of lines.filter((x) => x.t_ms % 2000 < 500)) {
    const queue = Math.max(0, ...link.filter((s) => s.at > since && s.at <= l.unix_ms).map((s) => (s.backlog * 8 * 1000) / rateAt(s.at)));
    parts.push(`${(l.t_ms / 1000).toFixed(0)}s ${Math.round(l.target_bps / 1000)}/${Math.round((l.layer_bps ?? 0) / 1000)}/${Math.round(l.sent_bps / 1000)}/${queue.toFixed(0)}`);
    since = l.unix_ms;
  }
  return `t estimate/file/sent kbit/s/longest queue ms: ${parts.join(', ')}`;
}

describe('natter sending to Chromium through a 1 Mbit/s tbf bottleneck, 50 ms RTT', () => {
  let files;
  before(() => {
    files = ladder();
  });

  test("natter's estimate settles within 20% of the limit and follows it down to 0.6 Mbit/s; Chromium decodes with little loss and delay", async (t) => {
    const limited = openPath({ rateBps: LIMIT, queueMs: QUEUE_MS });
    let browser;
    let natter;
    let bottleneck;
    try {
      browser = await limited.launchChromium();
      const layers = files.flatMap((f, i) => ['--layer', `l${i}=${f}`]);
      natter = await startExample('ivf-send', 'bwe-send', ['--adapt', ...layers, '--mdns', 'false'], { address: SENDER_ADDRESS });
      const page = await blankPage(await browser.newContext(), pageHelpers);
      const offer = await page.evaluate(() => window.bwe.receive());
      const upstream = candidateOn(offer, '127.0.0.1') ?? candidateOn(offer, RECEIVER_ADDRESS);
      assert.ok(upstream, `Chromium's offer has a host candidate in its namespace:\n${offer}`);
      const proxy = await limited.proxy(upstream, { delayMs: ONE_WAY_MS });
      const res = await fetch(`${natter.url}/offer`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'offer', sdp: onlyCandidate(offer, proxy) }),
      });
      const body = await res.text();
      assert.ok(res.ok, `natter answered the offer: ${res.status} ${body}`);
      const answer = JSON.parse(body).sdp;
      assert.match(answer, /transport-cc/, "natter's answer takes transport-wide congestion control");
      await page.evaluate((sdp) => window.bwe.answer(sdp), withoutCandidates(answer));
      bottleneck = sampleBottleneck(limited);
      await page.evaluate(() => window.bwe.sample('inbound'));
      await until(() => page.evaluate(() => window.pc.connectionState === 'connected'), {
        timeout: 15000,
        what: 'Chromium connected through the proxy',
        describe: async () => JSON.stringify({ chromium: await page.evaluate(() => window.pc.connectionState), natter: await natter.status(), proxy: limited.proxyLines }),
      });
      // The page's first sample with a decoded frame starts the clock.
      const first = await until(() => page.evaluate(() => window.bwe.samples.find((s) => s.framesDecoded > 0)?.t),
        { timeout: 10000, what: 'Chromium decoding natter\'s video' });
      const sendFor = (ms) => until(async () => {
        const s = await page.evaluate(() => window.bwe.samples);
        return s.at(-1).t - first >= ms && s;
      }, { timeout: ms + 15000, interval: 500, what: `${ms} ms of media` });

      let samples = await sendFor(CALL_MS);
      const end = samples.at(-1).t;
      limited.setRate(DROPPED);
      samples = await sendFor(CALL_MS + DROP_MS);
      await bottleneck.stop();
      const lines = natterLines(natter);
      const common = { lines, link: bottleneck.samples, samples };
      const settled = figures({ ...common, end, limit: LIMIT, windowMs: WINDOW_MS });
      const dropped = figures({ ...common, end: samples.at(-1).t, limit: DROPPED, windowMs: DROP_WINDOW_MS });
      t.diagnostic(describePhase(`at ${LIMIT / 1000} kbit/s`, settled));
      t.diagnostic(describePhase(`then at ${DROPPED / 1000} kbit/s`, dropped));
      t.diagnostic(timeline(lines, bottleneck.samples, (at) => (at <= end ? LIMIT : DROPPED)));
      const { media } = await natter.status();
      const [sender] = media.senders;
      t.diagnostic(`natter sent ${sender.packets_sent} video packets, ${sender.retransmitted_packets_sent} retransmitted for ${sender.nack_count} NACKs,` +
        ` ${media.padding_sent} of probe padding; ${sender.pli_count} PLIs; Chromium's reports: ${sender.remote_packets_lost} lost`);

      // The queue must drain between bursts (p50); its p95 is printed,
      // not bound: a keyframe, a layer switch or a probe still queues
      // for a moment (measured 177-259 ms). What a viewer sees of it is
      // Chromium's jitter buffer, bounded below.
      for (const [what, f] of [['at the limit', settled], ['after the drop', dropped]]) {
        assert.ok(f.estimate >= 0.8 * f.limit && f.estimate <= 1.2 * f.limit, `${what}, natter's median estimate ${f.estimate} within 20% of ${f.limit}`);
        assert.ok(f.queueP50 <= 50, `${what}, tbf's queue stood at p50 ${f.queueP50} ms`);
        assert.ok(f.loss <= 0.02, `${what}, Chromium lost ${f.loss} of the packets`);
        assert.ok(f.drops <= 0.02, `${what}, the bottleneck dropped ${f.drops} of the packets`);
        // Measured 20-26 ms a frame with a settled estimate; 500 ms and
        // more when probes overfilled the queue.
        assert.ok(f.jitterBufferMs <= 150, `${what}, Chromium's jitter buffer held a frame ${f.jitterBufferMs} ms on average`);
        assert.ok(f.fps >= 0.8 * FPS, `${what}, Chromium decoded ${f.fps} frames a second of ${FPS}`);
      }
    } finally {
      await bottleneck?.stop();
      await browser?.close();
      await natter?.stop();
      limited.close();
    }
  });
});
