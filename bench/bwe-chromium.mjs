// The Chromium <-> Chromium half of bench/bwe (issue 12, acceptance 3):
// one call through the limited real path of tests/peer/bwe-path.mjs,
// printing one JSON line of figures on stdout (notes on stderr).
//
//   node bench/bwe-chromium.mjs --schedule 0:1000000,40:2500000,60:600000,80:1000000 \
//        --duration 100 --one-way-ms 25 [--loss 0.05] [--queue-ms 300] [--max-bitrate 2500000] [--seed 1]
//        [--flows 2] [--jitter 5ms --reorder 0.01] [--limit-bitrate 500000 --limit-until 20]
//
// --flows N makes N calls (N senders in one browser, N receivers in the
// other, a proxy each) share the bottleneck; --limit-bitrate caps the
// senders' maxBitrate until --limit-until seconds (an application-limited
// source), then lifts it to --max-bitrate; --jitter and --reorder go to
// the proxy toward the receiver (natter-impair's keys).
//
// The sender is a headless Chromium in this process's namespace ("A"),
// sending its camera (bwe-path.mjs's 720p noisy test pattern, VP8) with
// `maxBitrate`; the receiver is a second headless Chromium started
// inside the path's namespace ("B") by bwe-path.mjs's launchChromium().
// The bottleneck's rate follows `--schedule` (seconds:bit/s, from the
// first media packet) with `tc qdisc change`; natter-impair
// adds `--one-way-ms` each way and `--loss` at random toward the receiver.
//
// Figures, as natter's deterministic cases (crates/natter/tests/
// congestion.rs) define them where the real path allows:
//   utilization   bits the bottleneck sent / its capacity over the call
//   time_to_90    the end of the first 1 s window (100 ms steps) in which
//                 the bottleneck sent >= 90% of its capacity, s
//   queue_p50/p95 tbf's backlog at the current rate, sampled every 200 ms
//                 after time_to_90, ms (natter's cases weigh per packet)
//   loss          tbf's drops and the proxy's random losses / packets offered
//   rtt_p50/p95   remote-inbound-rtp roundTripTime (the receiver's RTCP
//                 reports) after time_to_90, ms, base RTT included
//   estimate      median availableOutgoingBitrate after time_to_90 (max_estimate: the highest)
//   shares        each call's share of the RTP bytes sent in the second half
// Runs as root (the namespace, and Chromium in it).

import { parseArgs } from 'node:util';

import {
  blankPage, candidateOn, launchWithCamera, median, onlyCandidate, openPath, pageHelpers, percentile,
  sampleBottleneck, timeline, until, withoutCandidates, RECEIVER_ADDRESS,
} from '../tests/peer/bwe-path.mjs';

const { values: opts } = parseArgs({
  options: {
    schedule: { type: 'string', default: '0:1000000' },
    duration: { type: 'string', default: '30' },
    'one-way-ms': { type: 'string', default: '25' },
    loss: { type: 'string', default: '0' },
    'queue-ms': { type: 'string', default: '300' },
    'max-bitrate': { type: 'string', default: '2500000' },
    seed: { type: 'string', default: '1' },
    flows: { type: 'string', default: '1' },
    jitter: { type: 'string', default: '0ms' },
    reorder: { type: 'string', default: '0' },
    'limit-bitrate': { type: 'string' },
    'limit-until': { type: 'string', default: '0' },
  },
});
const schedule = opts.schedule.split(',').map((x) => x.split(':').map(Number)).map(([at, bps]) => ({ at: at * 1000, bps }));
const durationMs = Number(opts.duration) * 1000;
const rateAt = (ms) => schedule.filter((s) => s.at <= ms).at(-1).bps;

function note(text) {
  process.stderr.write(`bwe-chromium: ${text}\n`);
}

/** The bottleneck's capacity in bits over [from, to) ms since the start. */
function capacityBits(from, to) {
  let bits = 0;
  for (let at = from; at < to; at += 10) bits += (rateAt(at) * 10) / 1000;
  return bits;
}

function figures(flows, link, proxies, t0) {
  // Bits the bottleneck sent between two times (ms since t0), from the
  // samples nearest them.
  const rel = link.map((s) => ({ ...s, ms: s.at - t0 }));
  const near = (ms) => rel.reduce((best, s) => (Math.abs(s.ms - ms) < Math.abs(best.ms - ms) ? s : best));
  const sentBits = (from, to) => (near(to).bytes - near(from).bytes) * 8;
  let timeTo90 = null;
  for (let at = 1000; at <= durationMs; at += 100) {
    if (sentBits(at - 1000, at) >= 0.9 * capacityBits(at - 1000, at)) {
      timeTo90 = at / 1000;
      break;
    }
  }
  const converged = Math.max(timeTo90 ?? durationMs / 1000, Number(opts['limit-until'])) * 1000;
  const inCall = rel.filter((s) => s.ms >= 0 && s.ms <= durationMs);
  const queue = inCall.filter((s) => s.ms >= converged).map((s) => (s.backlog * 8 * 1000) / rateAt(s.ms));
  const [first, last] = [near(0), near(durationMs)];
  const lost = proxies.map((lines) => {
    const up = lines.filter((l) => l.startsWith('up ')).at(-1) ?? '';
    return Number(/\blost=(\d+)/.exec(up)?.[1] ?? 0);
  }).reduce((a, b) => a + b, 0);
  const drops = last.drops - first.drops;
  const offered = last.packets - first.packets + drops;
  const after = flows.flatMap((samples) => samples.filter((s) => s.t - t0 >= converged));
  const half = (samples) => {
    const from = samples.find((s) => s.t - t0 >= durationMs / 2) ?? samples.at(-1);
    return samples.at(-1).bytes - from.bytes;
  };
  const halves = flows.map(half);
  const carried = halves.reduce((a, b) => a + b, 0);
  return {
    utilization: sentBits(0, durationMs) / capacityBits(0, durationMs),
    time_to_90: timeTo90,
    queue_p50: percentile(queue, 0.5),
    queue_p95: percentile(queue, 0.95),
    loss: (drops + lost) / Math.max(1, offered),
    tbf_drops: drops,
    proxy_lost: lost,
    rtt_p50: percentile(after.map((s) => s.remoteRtt * 1000), 0.5),
    rtt_p95: percentile(after.map((s) => s.remoteRtt * 1000), 0.95),
    estimate: median(after.map((s) => s.available)),
    max_estimate: Math.max(...flows.flatMap((samples) => samples.map((s) => s.available ?? 0))),
    shares: halves.map((h) => h / Math.max(1, carried)),
    frame: `${flows[0].at(-1).width}x${flows[0].at(-1).height}`,
    timeline: flows.map((samples) => timeline(samples, 5000)),
  };
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench/bwe-chromium.mjs runs a Chromium inside a network namespace: run it as root');
  const limited = openPath({ rateBps: schedule[0].bps, queueMs: Number(opts['queue-ms']) });
  const browsers = [];
  let bottleneck;
  const timers = [];
  try {
    const sender = await launchWithCamera();
    browsers.push(sender);
    const receiver = await limited.launchChromium();
    browsers.push(receiver);
    const maxBitrate = Number(opts['max-bitrate']);
    const limit = opts['limit-bitrate'] ? Number(opts['limit-bitrate']) : null;
    const up = [];
    if (opts.jitter !== '0ms') up.push(`jitter=${opts.jitter}`);
    if (Number(opts.reorder) > 0) up.push(`reorder=${Number(opts.reorder) * 100}%`);
    const senders = [];
    for (let i = 0; i < Number(opts.flows); i++) {
      const a = await blankPage(await sender.newContext(), pageHelpers);
      const b = await blankPage(await receiver.newContext(), pageHelpers);
      const offer = withoutCandidates(await a.evaluate((max) => window.bwe.send(max), limit ?? maxBitrate));
      const answer = await b.evaluate((sdp) => window.bwe.answerOffer(sdp), offer);
      const upstream = candidateOn(answer, '127.0.0.1') ?? candidateOn(answer, RECEIVER_ADDRESS);
      if (!upstream) throw new Error(`the receiver's answer has no host candidate in its namespace:\n${answer}`);
      const seed = Number(opts.seed) * 100 + i;
      const proxy = await limited.proxy(upstream, { delayMs: Number(opts['one-way-ms']), loss: Number(opts.loss), seed, up });
      await a.evaluate((sdp) => window.bwe.answer(sdp), onlyCandidate(answer, proxy));
      senders.push(a);
    }
    bottleneck = sampleBottleneck(limited);
    for (const a of senders) {
      await a.evaluate(() => window.bwe.sample());
      await until(() => a.evaluate(() => window.pc.connectionState === 'connected'), { timeout: 15000, what: 'the call connected through the proxy' });
    }
    // t0: the first sample with media sent; the schedule counts from there.
    const t0 = await until(() => senders[0].evaluate(() => window.bwe.samples.find((s) => s.bytes > 0)?.t), { timeout: 10000, what: 'media sent' });
    const at = (ms, f) => timers.push(setTimeout(f, Math.max(0, t0 + ms - (performance.timeOrigin + performance.now()))));
    for (const { at: ms, bps } of schedule.slice(1)) at(ms, () => limited.setRate(bps));
    if (limit) {
      at(Number(opts['limit-until']) * 1000, () => senders.forEach((a) => a.evaluate((max) => window.bwe.setMaxBitrate(max), maxBitrate)));
    }
    const flows = [];
    for (const a of senders) {
      flows.push(await until(async () => {
        const s = await a.evaluate(() => window.bwe.samples);
        return s.at(-1).t - t0 >= durationMs + 300 && s;
      }, { timeout: durationMs + 30000, interval: 500, what: `${durationMs} ms of media` }));
    }
    await bottleneck.stop();
    const result = figures(flows, bottleneck.samples, limited.proxies, t0);
    result.timeline.forEach((line, i) => note(`call ${i + 1}: ${line}`));
    delete result.timeline;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    timers.forEach(clearTimeout);
    await bottleneck?.stop();
    for (const browser of browsers) await browser.close().catch(() => {});
    limited.close();
  }
}

main().catch((e) => {
  note(e.stack ?? e.message);
  process.exit(1);
});
