// natter <-> Chromium half of bench/datachannel (issue 15, acceptance 3):
// natter-io (crates/natter-io/examples/datachannel_bench --stdio) sends
// to an RTCPeerConnection in a headless Chromium page, both on
// 127.0.0.1 in the caller's namespace. Prints one line per run on
// stdout, `MB/s chat-p50-ms chat-p95-ms`, like the other halves.
//
//   node bench/lib/natter_chromium.mjs --natter PATH [--runs N] [--bytes B]
//        [--message-size M] [--buffer-low L] [--buffer-high H]
//        [--rtt MS --impair PATH] [--chat-interval MS] [--chat-size B]
//
// Each run starts the natter example afresh (one run per process) and
// relays its JSON lines (see the example's doc): natter offers the
// channels "bench" and "chat" and trickles its candidates; the page
// answers once it has gathered. natter sends the bulk on "bench" and a
// small message on "chat" every --chat-interval ms, which the page
// echoes. The page tells the wall clock of the last byte
// (performance.timeOrigin + performance.now(), the system clock natter
// read at its first send), so MB/s is from natter's first send to the
// page's last byte.
//
// With --rtt, natter-impair (bench/lib/impair_proxy.mjs) stands in front
// of the page's first UDP IPv4 candidate, the only one natter gets; the
// page gets none of natter's and learns it from the checks, so every
// packet crosses the proxy, half the round trip each way.

import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

import { launch } from './chromium_pair.mjs';
import { behindImpair, firstUdpCandidate, withCandidate } from './impair_proxy.mjs';

function fail(message) {
  process.stderr.write(`natter_chromium: ${message}\n`);
  process.exit(2);
}

// ---- in the page --------------------------------------------------------------------

/** Answers natter's offer once gathered; window.natterBench.done resolves at the last byte. */
async function pageAnswer({ offer, bytes }) {
  const pc = new RTCPeerConnection();
  let received = 0;
  const done = new Promise((resolve, reject) => {
    pc.ondatachannel = ({ channel }) => {
      channel.binaryType = 'arraybuffer';
      if (channel.label === 'chat') channel.onmessage = (e) => channel.send(e.data);
      else if (channel.label === 'bench') {
        channel.onmessage = (e) => {
          received += e.data.byteLength;
          if (received >= bytes) resolve(performance.timeOrigin + performance.now());
        };
      } else reject(new Error(`natter opened an unknown channel "${channel.label}"`));
    };
  });
  window.natterBench = { pc, done, received: () => received };
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  const gathered = new Promise((resolve) => {
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  await pc.setLocalDescription();
  if (pc.iceGatheringState !== 'complete') await gathered;
  return pc.localDescription.sdp;
}

// ---- in node ------------------------------------------------------------------------

/** One run: the natter example against a fresh RTCPeerConnection of `page`; its result line. */
async function once(page, o) {
  const argv = ['--stdio', '--runs', '1', '--bytes', o.bytes, '--message-size', o.messageSize];
  argv.push('--buffer-low', o.bufferLow, '--buffer-high', o.bufferHigh, '--chat-interval-ms', o.chatInterval, '--chat-size', o.chatSize);
  const child = spawn(o.natter, argv.map(String), { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve(signal || code)));
  child.once('error', (e) => fail(`cannot run ${o.natter}: ${e.message}`));
  const send = (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`);
  const proxies = [];
  let result = null;
  let failure = null;
  try {
    for await (const line of readline.createInterface({ input: child.stdout })) {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        throw new Error(`natter printed a line that is not JSON: ${line.slice(0, 200)}`);
      }
      if (msg.type === 'offer') {
        const offer = o.rtt > 0 ? withCandidate(msg.sdp, null) : msg.sdp;
        let answer = await page.evaluate(pageAnswer, { offer, bytes: o.bytes });
        if (o.rtt > 0) {
          const candidate = firstUdpCandidate(answer);
          if (!candidate) throw new Error(`the page's answer has no UDP IPv4 candidate:\n${answer}`);
          const proxy = await behindImpair(o.impair, candidate, o.rtt / 2);
          proxies.push(proxy);
          answer = withCandidate(answer, proxy.candidate);
        }
        send({ type: 'answer', sdp: answer });
        page
          .evaluate(() => window.natterBench.done)
          .then((epochMs) => send({ type: 'done', epoch_ms: epochMs }))
          .catch((e) => (failure = e));
      } else if (msg.type === 'candidate') {
        if (!(o.rtt > 0) && msg.candidate) await page.evaluate((c) => window.natterBench.pc.addIceCandidate(c), msg);
      } else if (msg.type === 'result') {
        result = [msg.mbps, msg.chat_p50_ms, msg.chat_p95_ms].map((x) => (x === null ? 'NaN' : Number(x).toFixed(3))).join(' ');
      } else throw new Error(`natter sent ${line.slice(0, 200)}`);
    }
  } finally {
    child.stdin.end();
    const code = await exited;
    for (const p of proxies) p.close();
    await page.evaluate(() => window.natterBench?.pc.close());
    if (failure) fail(`the page: ${failure.message}`);
    if (code !== 0) fail(`${o.natter} exited with ${code}`);
  }
  if (!result) fail('natter ended without a result');
  return result;
}

async function main() {
  const { values } = parseArgs({
    options: {
      natter: { type: 'string' },
      impair: { type: 'string', default: '' },
      rtt: { type: 'string', default: '0' },
      runs: { type: 'string', default: '3' },
      bytes: { type: 'string', default: '50000000' },
      'message-size': { type: 'string', default: '16384' },
      'buffer-low': { type: 'string', default: String(1 << 20) },
      'buffer-high': { type: 'string', default: String(4 << 20) },
      'chat-interval': { type: 'string', default: '50' },
      'chat-size': { type: 'string', default: '100' },
    },
  });
  const num = (name) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < 0) fail(`--${name} wants a number of at least 0, got ${values[name]}`);
    return n;
  };
  if (!values.natter) fail('--natter PATH (target/release/examples/datachannel_bench) is needed');
  const o = {
    natter: values.natter,
    impair: values.impair,
    rtt: num('rtt'),
    bytes: num('bytes'),
    messageSize: num('message-size'),
    bufferLow: num('buffer-low'),
    bufferHigh: num('buffer-high'),
    chatInterval: num('chat-interval'),
    chatSize: num('chat-size'),
  };
  if (o.rtt > 0 && !o.impair) fail('--rtt needs --impair PATH, the natter-impair binary');
  const chromium = await launch('chromium');
  try {
    for (let run = 0; run < num('runs'); run++) process.stdout.write(`${await once(chromium.page, o)}\n`);
  } finally {
    await chromium.close();
  }
}

main().catch((e) => fail(e.stack || e.message));
