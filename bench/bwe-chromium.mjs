// The real-link half of bench/bwe (issue 12, acceptance 3): one call
// through the limited real path of tests/peer/bwe-path.mjs, printing one
// JSON line of figures on stdout (notes on stderr).
//
//   node bench/bwe-chromium.mjs [--sender chromium|natter] [--receiver chromium|natter] --schedule 0:1000000,40:2500000,60:600000,80:1000000 \
//        --duration 100 --one-way-ms 25 [--loss 0.05] [--queue-ms 300] [--max-bitrate 2500000] [--seed 1]
//        [--flows 2] [--jitter 5ms --reorder 0.01] [--limit-bitrate 500000 --limit-until 20]
//
// --flows N makes N calls (N senders, N receivers in one browser, a
// proxy each) share the bottleneck; --limit-bitrate caps the Chromium
// senders' maxBitrate until --limit-until seconds (an application-limited
// source), then lifts it to --max-bitrate; --jitter and --reorder go to
// the proxy toward the receiver (natter-impair's keys).
//
// The receiver is a headless Chromium started inside the path's
// namespace ("B") by bwe-path.mjs's launchChromium(), so both senders run
// on the same feedback (Chromium's transport-wide CC reports); with
// --receiver natter (natter's sender only) it is natter-io's record
// example in B, so natter's estimator runs on natter's own feedback
// (natter -> natter). The sender,
// in this process's namespace ("A"), is
//   chromium  a second headless Chromium sending its camera (bwe-path.mjs's
//             720p noisy test pattern, VP8) with `maxBitrate`; its
//             estimate is the pair's availableOutgoingBitrate;
//   natter    natter-io's ivf-send example with `--adapt` (as tests/peer/
//             bwe-send.mjs runs it): one VP8 stream switching among a
//             ladder of files of one noisy picture (steps of about 15%,
//             those at most --max-bitrate), chosen by natter's target
//             bitrate, which is its estimate. A file ladder cannot follow
//             a cap changed mid-call: --limit-bitrate is refused.
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
//                 after time_to_90 (never there: the second half), ms
//                 (natter's deterministic cases weigh per packet)
//   loss          tbf's drops and the proxy's random losses / packets offered
//   rtt_p50/p95   after time_to_90, ms, base RTT included: the Chromium
//                 sender's remote-inbound-rtp roundTripTime (the receiver's
//                 RTCP reports); with natter, the receiving Chromium's
//                 selected pair currentRoundTripTime (its STUN checks);
//                 natter -> natter: ivf-send's RTT from the receiver's
//                 RTCP reports (its /status)
//   estimate      median estimate after time_to_90 (max_estimate: the highest)
//   shares        each call's share of the RTP bytes sent (natter: received) in the second half
// Runs as root (the namespace, and Chromium in it).

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  blankPage, candidateOn, launchWithCamera, median, onlyCandidate, openPath, pageHelpers, percentile,
  sampleBottleneck, until, withoutCandidates, RECEIVER_ADDRESS, SENDER_ADDRESS,
} from '../tests/peer/bwe-path.mjs';
import { freePort } from '../tests/browser/harness.mjs';
import { ARTIFACTS, EXAMPLES } from '../tests/peer/harness.mjs';
import { ffmpegTool, startExample } from '../tests/peer/media.mjs';

const { values: opts } = parseArgs({
  options: {
    sender: { type: 'string', default: 'chromium' },
    receiver: { type: 'string', default: 'chromium' },
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
if (!['chromium', 'natter'].includes(opts.sender)) throw new Error(`--sender chromium or natter, not ${opts.sender}`);
if (!['chromium', 'natter'].includes(opts.receiver)) throw new Error(`--receiver chromium or natter, not ${opts.receiver}`);
if (opts.receiver === 'natter' && opts.sender !== 'natter') throw new Error('--receiver natter takes natter\'s sender only (--sender natter)');
if (opts.sender === 'natter' && opts['limit-bitrate']) {
  throw new Error('--limit-bitrate: natter\'s sender (ivf-send --adapt) sends a ladder of files and cannot change its cap mid-call');
}
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

/**
 * `flows[i]`: one call's `sent` ({t, bytes} cumulative, t ms since the
 * epoch), `rtts` ({t, ms}) and `estimates` ({t, bps}).
 */
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
  // Never at 90%: the second half of the call.
  const converged = Math.max(timeTo90 ?? durationMs / 2000, Number(opts['limit-until'])) * 1000;
  const inCall = rel.filter((s) => s.ms >= 0 && s.ms <= durationMs);
  const queue = inCall.filter((s) => s.ms >= converged).map((s) => (s.backlog * 8 * 1000) / rateAt(s.ms));
  const [first, last] = [near(0), near(durationMs)];
  const lost = proxies.map((lines) => {
    const up = lines.filter((l) => l.startsWith('up ')).at(-1) ?? '';
    return Number(/\blost=(\d+)/.exec(up)?.[1] ?? 0);
  }).reduce((a, b) => a + b, 0);
  const drops = last.drops - first.drops;
  const offered = last.packets - first.packets + drops;
  const after = (xs) => xs.filter((x) => x.t - t0 >= converged && x.t - t0 <= durationMs);
  const rtts = flows.flatMap((f) => after(f.rtts).map((x) => x.ms));
  const half = ({ sent }) => {
    const inside = sent.filter((x) => x.t - t0 <= durationMs);
    const from = inside.find((x) => x.t - t0 >= durationMs / 2) ?? inside.at(-1);
    return inside.at(-1).bytes - from.bytes;
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
    rtt_p50: percentile(rtts, 0.5),
    rtt_p95: percentile(rtts, 0.95),
    estimate: median(flows.flatMap((f) => after(f.estimates).map((x) => x.bps))),
    max_estimate: Math.max(...flows.flatMap((f) => f.estimates.map((x) => x.bps ?? 0))),
    shares: halves.map((h) => h / Math.max(1, carried)),
  };
}

/** One line per `stepMs` of a flow: estimate, sent kbit/s, RTT ms. */
function timeline({ sent, rtts, estimates }, t0, stepMs = 5000) {
  const parts = [];
  const latest = (xs, t) => xs.filter((x) => x.t <= t).at(-1);
  let prev = sent.find((x) => x.t >= t0) ?? sent[0];
  for (const s of sent) {
    if (s.t - prev.t < stepMs) continue;
    const kbps = ((s.bytes - prev.bytes) * 8) / (s.t - prev.t);
    parts.push(`${((s.t - t0) / 1000).toFixed(0)}s ${Math.round((latest(estimates, s.t)?.bps ?? 0) / 1000)}/${Math.round(kbps)}/${Math.round(latest(rtts, s.t)?.ms ?? 0)}`);
    prev = s;
  }
  return `t estimate/sent kbit/s/RTT ms: ${parts.join(', ')}`;
}

// ---- natter's sender ----------------------------------------------------------------

/**
 * The ladder's bitrates, kbit/s: steps of about 15%, up to above the
 * fastest link here (3 Mbit/s); from 400 kbit/s, as libvpx does not go
 * below about 370 kbit/s on this noisy 360p picture.
 */
const LADDER_KBPS = [400, 460, 530, 610, 700, 800, 920, 1060, 1220, 1400, 1600, 1850, 2100, 2400, 2750, 3150, 3600, 4000];
const FPS = 30;

/**
 * The ladder, as tests/peer/bwe-send.mjs makes its own (there up to
 * 1.5 Mbit/s at 480x270; here to 4 Mbit/s at 640x360): 3 s of ffmpeg's testsrc2
 * with fresh noise in every frame, one VP8 file per rate in
 * constant-bitrate mode, a keyframe a second of at most 3 average frames.
 * Made once into target/peer. Returns [{file, kbps}].
 */
function ladder() {
  const encode = (k) => ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-g', String(FPS), '-keyint_min', String(FPS),
    '-max-intra-rate', '300', '-b:v', `${k}k`, '-minrate', `${k}k`, '-maxrate', `${k}k`, '-bufsize', `${k / 2}k`, '-frames:v', String(3 * FPS)];
  const key = createHash('sha1').update(JSON.stringify(LADDER_KBPS.map(encode))).digest('hex').slice(0, 8);
  const dir = path.join(ARTIFACTS, `bwe-bench-ladder-${key}`);
  const files = LADDER_KBPS.map((k) => ({ file: path.join(dir, `${k}k.ivf`), kbps: k }));
  if (files.every(({ file }) => fs.existsSync(file))) return files;
  fs.mkdirSync(dir, { recursive: true });
  const outputs = files.flatMap(({ file, kbps }) => ['-map', '0', ...encode(kbps), '-y', `${file}.part.ivf`]);
  try {
    execFileSync(ffmpegTool('ffmpeg'), ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${FPS},noise=alls=20:allf=t+u`, ...outputs],
      { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`ffmpeg could not encode VP8 (Debian's ffmpeg has libvpx: "apt-get install ffmpeg"): ${e.stderr ?? e.message}`);
  }
  files.forEach(({ file }) => fs.renameSync(`${file}.part.ivf`, file));
  return files;
}

/** ivf-send's JSON lines so far: `{t_ms, unix_ms, target_bps, aim_bps, layer, layer_bps, sent_bps}` every 500 ms (kept in target/peer as bwe-bench-PID-I.jsonl). */
const natterLines = (natter) => natter.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

/**
 * natter's sender for call `i`: ivf-send --adapt --follow-target (the
 * highest file its target covers, as an encoder told the target; not
 * the SFU selector's margin and 2 s hold) over the ladder's files up to
 * --max-bitrate, in A.
 */
function startNatterSender(i) {
  const files = ladder().filter(({ kbps }) => kbps * 1000 <= Number(opts['max-bitrate']));
  const layers = files.flatMap(({ file }, n) => ['--layer', `l${n}=${file}`]);
  return startExample('ivf-send', `bwe-bench-${process.pid}-${i}`, ['--adapt', '--follow-target', ...layers, '--mdns', 'false'], { address: SENDER_ADDRESS });
}

/** One natter call through a proxy of `limited` to a page of `receiver`: the natter process and the page. */
async function natterCall(limited, receiver, i, proxyOptions) {
  const natter = await startNatterSender(i);
  const page = await blankPage(await receiver.newContext(), pageHelpers);
  const offer = await page.evaluate(() => window.bwe.receive());
  const upstream = candidateOn(offer, '127.0.0.1') ?? candidateOn(offer, RECEIVER_ADDRESS);
  if (!upstream) throw new Error(`the receiver's offer has no host candidate in its namespace:\n${offer}`);
  const proxy = await limited.proxy(upstream, proxyOptions);
  const res = await fetch(`${natter.url}/offer`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'offer', sdp: onlyCandidate(offer, proxy) }),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`natter refused the offer: ${res.status} ${body}`);
  await page.evaluate((sdp) => window.bwe.answer(sdp), withoutCandidates(JSON.parse(body).sdp));
  await page.evaluate(() => window.bwe.sample('inbound'));
  return { natter, page };
}

/**
 * natter-io's record example inside B for call `i`: its HTTP server on
 * B's veth address (reached from A across the path; only signaling and
 * /status use it), its ICE on B's loopback, so that media reaches it
 * only through the proxy. Its files go to target/peer and are removed
 * by `remove()`. Killed with the path.
 */
async function startNatterReceiver(limited, i) {
  const bin = path.join(EXAMPLES, 'record');
  if (!fs.existsSync(bin)) throw new Error(`no record example at ${bin}: run "cargo build --release -p natter-io --example record" (bench/bwe does)`);
  const name = `bwe-bench-record-${process.pid}-${i}`;
  const out = path.join(ARTIFACTS, name);
  fs.mkdirSync(out, { recursive: true });
  const log = fs.createWriteStream(`${out}.log`);
  const port = await freePort();
  const child = limited.spawn([bin, '--listen', `${RECEIVER_ADDRESS}:${port}`, '--address', '127.0.0.1', '--out', out,
    '--frames', String(Number.MAX_SAFE_INTEGER), '--mdns', 'false'], { env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1' } });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const url = `http://${RECEIVER_ADDRESS}:${port}`;
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`record exited early (${child.exitCode}); see ${out}.log`);
    return (await fetch(`${url}/healthz`).catch(() => null))?.ok;
  }, { timeout: 15000, interval: 100, what: `record on ${url}/healthz (log: ${out}.log)` });
  return {
    url,
    status: async () => (await fetch(`${url}/status`)).json(),
    remove: () => fs.rmSync(out, { recursive: true, force: true }),
  };
}

/** POSTs `body` as JSON to `url`; the response's JSON (none for 204), or an error naming `what`. */
async function postJson(url, body, what) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * One natter -> natter call: ivf-send (in A) offers, record (in B)
 * answers, through a proxy of `limited`; the sender's offer loses its
 * candidates and the receiver's answer gets the proxy's, so the receiver
 * learns the sender as a peer-reflexive candidate, as a page does.
 */
async function natterToNatterCall(limited, i, proxyOptions) {
  const natter = await startNatterSender(i);
  const receiver = await startNatterReceiver(limited, i);
  const offer = await postJson(`${natter.url}/local-offer`, null, 'ivf-send POST /local-offer');
  const answer = await postJson(`${receiver.url}/offer`, { type: 'offer', sdp: withoutCandidates(offer.sdp) }, 'record POST /offer');
  const upstream = candidateOn(answer.sdp, '127.0.0.1');
  if (!upstream) throw new Error(`natter's receiver answered with no host candidate on 127.0.0.1:\n${answer.sdp}`);
  const proxy = await limited.proxy(upstream, proxyOptions);
  await postJson(`${natter.url}/answer`, { type: 'answer', sdp: onlyCandidate(answer.sdp, proxy) }, 'ivf-send POST /answer');
  return { natter, receiver };
}

/** A natter call's flow: what natter sent (its 500 ms lines), its estimates, and `rtts` ({t, ms}). */
function natterFlow(lines, rtts) {
  let bytes = 0;
  const sent = lines.map((l) => ({ t: l.unix_ms, bytes: (bytes += (l.sent_bps * 0.5) / 8) }));
  return {
    sent,
    estimates: lines.map((l) => ({ t: l.unix_ms, bps: l.target_bps })),
    rtts,
  };
}

/** The receiving page's RTTs ({t, ms}): its selected pair's currentRoundTripTime. */
const pageRtts = (pageSamples) => pageSamples.filter((s) => s.pairRtt !== undefined).map((s) => ({ t: s.t, ms: s.pairRtt * 1000 }));

/** A Chromium sender's flow, from its page's outbound samples. */
function chromiumFlow(samples) {
  return {
    sent: samples.map((s) => ({ t: s.t, bytes: s.bytes })),
    estimates: samples.filter((s) => s.available !== undefined).map((s) => ({ t: s.t, bps: s.available })),
    rtts: samples.filter((s) => s.remoteRtt !== undefined).map((s) => ({ t: s.t, ms: s.remoteRtt * 1000 })),
  };
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench/bwe-chromium.mjs runs a Chromium inside a network namespace: run it as root');
  const limited = openPath({ rateBps: schedule[0].bps, queueMs: Number(opts['queue-ms']) });
  const browsers = [];
  const natters = [];
  const receivers = [];
  let bottleneck;
  const timers = [];
  try {
    const natterSends = opts.sender === 'natter';
    const natterReceives = opts.receiver === 'natter';
    const sender = natterSends ? null : await launchWithCamera();
    if (sender) browsers.push(sender);
    const receiver = natterReceives ? null : await limited.launchChromium();
    if (receiver) browsers.push(receiver);
    const maxBitrate = Number(opts['max-bitrate']);
    const limit = opts['limit-bitrate'] ? Number(opts['limit-bitrate']) : null;
    const up = [];
    if (opts.jitter !== '0ms') up.push(`jitter=${opts.jitter}`);
    if (Number(opts.reorder) > 0) up.push(`reorder=${Number(opts.reorder) * 100}%`);
    // The pages whose samples tell when media flows: the senders' (Chromium) or the receivers' (natter to Chromium).
    const pages = [];
    for (let i = 0; i < Number(opts.flows); i++) {
      const proxyOptions = { delayMs: Number(opts['one-way-ms']), loss: Number(opts.loss), seed: Number(opts.seed) * 100 + i, up };
      if (natterReceives) {
        const call = await natterToNatterCall(limited, i, proxyOptions);
        natters.push(call.natter);
        receivers.push(call.receiver);
        continue;
      }
      if (natterSends) {
        const { natter, page } = await natterCall(limited, receiver, i, proxyOptions);
        natters.push(natter);
        pages.push(page);
        continue;
      }
      const a = await blankPage(await sender.newContext(), pageHelpers);
      const b = await blankPage(await receiver.newContext(), pageHelpers);
      const offer = withoutCandidates(await a.evaluate((max) => window.bwe.send(max), limit ?? maxBitrate));
      const answer = await b.evaluate((sdp) => window.bwe.answerOffer(sdp), offer);
      const upstream = candidateOn(answer, '127.0.0.1') ?? candidateOn(answer, RECEIVER_ADDRESS);
      if (!upstream) throw new Error(`the receiver's answer has no host candidate in its namespace:\n${answer}`);
      const proxy = await limited.proxy(upstream, proxyOptions);
      await a.evaluate((sdp) => window.bwe.answer(sdp), onlyCandidate(answer, proxy));
      await a.evaluate(() => window.bwe.sample());
      pages.push(a);
    }
    bottleneck = sampleBottleneck(limited);
    let t0;
    // natter -> natter: ivf-send's RTTs, polled from its /status.
    const senderRtts = natters.map(() => []);
    if (natterReceives) {
      for (const n of natters) {
        await until(async () => (await n.status()).connection === 'Connected', { timeout: 15000, what: 'natter -> natter connected through the proxy' });
      }
      // t0: when ivf-send began sending (its first line's time less its t_ms).
      t0 = await until(() => {
        const first = natterLines(natters[0]).find((l) => l.sent_bps > 0);
        return first && first.unix_ms - first.t_ms;
      }, { timeout: 10000, what: 'media sent' });
      timers.push(setInterval(() => natters.forEach((n, i) => n.status().then((st) => {
        const rtt = st.media?.senders?.[0]?.rtt_ms;
        if (typeof rtt === 'number') senderRtts[i].push({ t: Date.now(), ms: rtt });
      }).catch(() => {})), 500));
    } else {
      for (const a of pages) {
        await until(() => a.evaluate(() => window.pc.connectionState === 'connected'), { timeout: 15000, what: 'the call connected through the proxy' });
      }
      // t0: the first sample with media sent (natter: received); the schedule counts from there.
      t0 = await until(() => pages[0].evaluate(() => window.bwe.samples.find((s) => s.bytes > 0)?.t), { timeout: 10000, what: 'media sent' });
    }
    const at = (ms, f) => timers.push(setTimeout(f, Math.max(0, t0 + ms - (performance.timeOrigin + performance.now()))));
    for (const { at: ms, bps } of schedule.slice(1)) at(ms, () => limited.setRate(bps));
    if (limit) {
      at(Number(opts['limit-until']) * 1000, () => pages.forEach((a) => a.evaluate((max) => window.bwe.setMaxBitrate(max), maxBitrate)));
    }
    const samples = [];
    if (natterReceives) {
      for (const n of natters) {
        await until(() => (natterLines(n).at(-1)?.unix_ms ?? 0) - t0 >= durationMs + 600,
          { timeout: durationMs + 30000, interval: 500, what: `${durationMs} ms of media` });
      }
    }
    for (const a of pages) {
      samples.push(await until(async () => {
        const s = await a.evaluate(() => window.bwe.samples);
        return s.at(-1).t - t0 >= durationMs + 600 && s;
      }, { timeout: durationMs + 30000, interval: 500, what: `${durationMs} ms of media` }));
    }
    await bottleneck.stop();
    timers.forEach(clearTimeout);
    let flows;
    if (natterReceives) flows = natters.map((n, i) => natterFlow(natterLines(n), senderRtts[i]));
    else if (natterSends) flows = natters.map((n, i) => natterFlow(natterLines(n), pageRtts(samples[i])));
    else flows = samples.map(chromiumFlow);
    const result = figures(flows, bottleneck.samples, limited.proxies, t0);
    flows.forEach((f, i) => note(`call ${i + 1}: ${timeline(f, t0)}`));
    for (const [i, n] of natters.entries()) {
      const { media } = await n.status();
      const [s] = media.senders;
      let reports = `Chromium's reports: ${s.remote_packets_lost} lost`;
      if (natterReceives) {
        const got = (await receivers[i].status()).media;
        const [r] = got.receivers;
        reports = `natter's receiver: ${r?.packets_lost} lost, ${r?.nack_count} NACKs, ${got.twcc_feedback_sent} transport-cc feedback packets`;
      }
      note(`call ${i + 1}: natter sent ${s.packets_sent} video packets, ${s.retransmitted_packets_sent} retransmitted for ${s.nack_count} NACKs,`
        + ` ${media.padding_sent} of probe padding; ${reports}`);
      fs.writeFileSync(`${n.logPath.replace(/\.log$/, '')}.jsonl`, n.stdout());
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    timers.forEach(clearTimeout);
    await bottleneck?.stop();
    for (const browser of browsers) await browser.close().catch(() => {});
    for (const n of natters) await n.stop().catch(() => {});
    limited.close();
    for (const r of receivers) r.remove();
  }
}

main().catch((e) => {
  note(e.stack ?? e.message);
  process.exit(1);
});
