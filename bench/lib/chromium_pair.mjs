// The Chromium halves of bench/datachannel and bench/connect (issue 5),
// and with `--browser firefox` the Firefox halves of bench/connect
// (issue 17): a headless browser, one blank page served from 127.0.0.1.
// Prints one figure per line on stdout, like the natter examples the
// benches call; notes go to stderr.
//
//   node bench/lib/chromium_pair.mjs datachannel [--runs N] [--bytes B]
//        [--message-size M] [--buffer-low L] [--buffer-high H]
//        [--rtt MS --impair PATH] [--chat-interval MS] [--chat-size B]
//     Two RTCPeerConnections in one page, one reliable ordered channel:
//     per run one line `MB/s chat-p50-ms chat-p95-ms`: MB/s (10^6
//     bytes/s) from the first send to the last byte received, both read
//     from the page's clock, and the round trips of the small messages
//     sent on a second channel every --chat-interval ms meanwhile, which
//     the receiver echoes (bench/datachannel, issue 15). With --rtt, the
//     natter-impair binary PATH (bench/lib/impair_proxy.mjs) delays the
//     path by half the round trip each way.
//
//   node bench/lib/chromium_pair.mjs connect [--browser B] [--runs N] [--warmup W] [--rtt MS]
//     Two RTCPeerConnections in one page: ms per run from createOffer()
//     until the data channel is open on both sides. With --rtt, a UDP
//     delay proxy in this process (half the round trip each way, one
//     socket per client, node's timers) stands in front of the
//     answerer's first candidate, which the offerer gets rewritten to
//     the proxy; the answerer gets none of the offerer's and learns its
//     address from the checks, so every packet crosses the proxy.
//
//   node bench/lib/chromium_pair.mjs answer [--browser B] [--runs N] [--warmup W] -- CMD ARG...
//     The browser answers an offerer run as CMD, which speaks the JSON-lines
//     protocol below on its stdin and stdout: ms per run from the "start"
//     the page sends until the channel is open on both sides.
//
// The offerer protocol (one JSON object per line; natter's side is
// crates/natter-io/examples/connect_bench, the stand-in is
// `bench/lib/aiortc_pair.py offer`). Per run:
//   offerer -> {"type":"ready"}      it has a fresh PeerConnection with a
//                                    data channel "bench"; not timed
//   page    -> {"type":"start"}      the clock starts; the offerer creates
//                                    the offer and sets it locally
//   offerer -> {"type":"offer","sdp":S}
//   offerer -> {"type":"candidate","candidate":C,"sdpMid":M,"sdpMLineIndex":I}  (any number)
//   offerer -> {"type":"end-of-candidates"}                                     (optional)
//   page    -> {"type":"answer","sdp":S}, then candidates the same way, then end-of-candidates
//   offerer -> {"type":"open"}       its channel is open
//   page    -> {"type":"close"}      once both are open (the clock has
//                                    stopped); the offerer closes and, unless
//                                    its stdin ends, starts the next run
//                                    with a new "ready"
// Lines travel page <-> WebSocket <-> this process <-> pipe <-> offerer,
// so the offerer's figure carries relay hops that the in-page pair does
// not; stderr reports the median page <-> process WebSocket round trip
// for scale.
//
// `--field-trials T` launches Chromium with --force-fieldtrials=T, say
// WebRTC-Sctp-Snap/Enabled/ for SNAP's a=sctp-init (draft-hancke-tsvwg-snap).
//
// `--browser firefox` runs Debian's firefox-esr through puppeteer-core
// (WebDriver BiDi) instead, launched by tests/peer/harness.mjs's
// launchFirefox. Firefox gathers nothing on `lo` nor without a default
// route: run it where an interface has an address and a default route
// (shared TESTING.md).
//
// Environment: CHROMIUM (default /usr/bin/chromium), NATTER_FIREFOX
// (default /usr/bin/firefox-esr).

import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { CHROMIUM, CHROMIUM_ARGS } from '../../tests/browser/harness.mjs';
import { behindImpair } from './impair_proxy.mjs';


const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// playwright-core and ws are the browser tests' pinned packages.
const requireTests = createRequire(path.join(ROOT, 'tests/browser/package.json'));

function fail(message) {
  process.stderr.write(`chromium_pair: ${message}\n`);
  process.exit(2);
}

/** `require` of a package of tests/browser's install, or fail with how to get it. */
function testPackage(name) {
  try {
    return requireTests(name);
  } catch (e) {
    return fail(`${name} is missing: run scripts/setup (npm ci in tests/browser). ${e.message}`);
  }
}

/**
 * Headless Chromium (playwright-core) or Firefox ESR (tests/peer/harness.mjs's
 * launchFirefox). `fieldTrials` goes to Chromium's --force-fieldtrials.
 */
async function launchBrowser(which, fieldTrials) {
  if (which === 'firefox') {
    const { launchFirefox } = await import('../../tests/peer/harness.mjs');
    return launchFirefox().catch((e) => fail(e.message));
  }
  if (!fs.existsSync(CHROMIUM)) fail(`no browser at ${CHROMIUM}: run scripts/setup (it installs Debian's chromium)`);
  let chromium;
  try {
    ({ chromium } = requireTests('playwright-core'));
  } catch (e) {
    fail(`playwright-core is missing: run scripts/setup (npm ci in tests/browser). ${e.message}`);
  }
  const args = fieldTrials ? [...CHROMIUM_ARGS, `--force-fieldtrials=${fieldTrials}`] : CHROMIUM_ARGS;
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/**
 * A headless browser with one page from a blank-page server on
 * 127.0.0.1, which the `answer` mode's WebSocket also uses: a page that
 * playwright answers itself has no address space, so Chromium's local
 * network access checks would block its WebSocket to 127.0.0.1.
 */
export async function launch(which, fieldTrials) {
  const server = http.createServer((req, res) => {
    // Cross-origin isolated, so that performance.now() is precise to
    // microseconds (Firefox rounds it to 1 ms otherwise).
    res.writeHead(200, { 'content-type': 'text/html', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
    res.end('<!doctype html><title>natter bench</title>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const browser = await launchBrowser(which, fieldTrials);
  const page = await browser.newPage();
  page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
  page.on('console', (m) => m.type() === 'error' && process.stderr.write(`page console: ${m.text()}\n`));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  // Chromium gathers on every interface, `lo` included, only for a page
  // that was granted media; otherwise it uses the interface of the
  // default route, which a namespace with only `lo` lacks, and gathers
  // nothing. So: one fake microphone, released at once (in Firefox too,
  // so that both pages are alike).
  await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getTracks()) track.stop();
  });
  return {
    browser,
    page,
    server,
    async close() {
      await browser.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

/**
 * A UDP proxy delaying each direction by `oneWayMs` in front of the
 * address of `candidate` (RFC 8839 §5.1: its fifth and sixth fields),
 * and the candidate rewritten to the proxy's address. Each client gets
 * a socket of its own toward the upstream.
 */
async function behindProxy(candidate, oneWayMs, proxies) {
  const fields = candidate.split(' ');
  const upstream = { address: fields[4], port: Number(fields[5]) };
  const listen = dgram.createSocket('udp4');
  const clients = new Map();
  let open = true;
  const later = (socket, msg, port, address) => setTimeout(() => open && socket.send(msg, port, address), oneWayMs);
  listen.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let toUpstream = clients.get(key);
    if (!toUpstream) {
      toUpstream = dgram.createSocket('udp4');
      toUpstream.bind(0, '127.0.0.1');
      toUpstream.on('message', (back) => later(listen, back, from.port, from.address));
      clients.set(key, toUpstream);
    }
    later(toUpstream, msg, upstream.port, upstream.address);
  });
  await new Promise((resolve) => listen.bind(0, '127.0.0.1', resolve));
  proxies.push({
    close: () => {
      open = false;
      [listen, ...clients.values()].forEach((socket) => socket.close());
    },
  });
  fields[4] = '127.0.0.1';
  fields[5] = String(listen.address().port);
  return fields.join(' ');
}

// ---- in the page --------------------------------------------------------------------
// These functions are serialised into the page by page.evaluate(), so
// each one carries its own helpers.

/**
 * One transfer per run between two RTCPeerConnections of the page, with
 * a chat channel beside it: per run [MB/s, chat round trip p50 ms, p95 ms].
 * With `rtt`, window.natterProxy (natter-impair, exposed by node) stands
 * in front of the answerer's first UDP IPv4 candidate, the only one the
 * offerer gets; the answerer gets none of the offerer's and learns it
 * from the checks (peer-reflexive), so every packet crosses the proxy.
 */
async function pageDataChannel({ runs, bytes, messageSize, bufferLow, bufferHigh, rtt, chatInterval, chatSize }) {
  async function connectPair() {
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    let proxied = false;
    a.onicecandidate = (e) => e.candidate && !rtt && b.addIceCandidate(e.candidate);
    b.onicecandidate = async (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      if (!rtt) return a.addIceCandidate(e.candidate);
      if (proxied || !/ udp \d+ \d+\.\d+\.\d+\.\d+ /i.test(e.candidate.candidate)) return;
      proxied = true;
      const candidate = await window.natterProxy(e.candidate.candidate);
      await a.addIceCandidate({ candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex });
    };
    const channel = a.createDataChannel('bench', { ordered: true });
    const chat = a.createDataChannel('chat', { ordered: true });
    const remote = {};
    const both = new Promise((resolve) => {
      b.ondatachannel = (e) => {
        remote[e.channel.label] = e.channel;
        if (remote.bench && remote.chat) resolve();
      };
    });
    const opened = Promise.all([channel, chat].map((c) => new Promise((resolve) => (c.onopen = resolve))));
    // addIceCandidate() waits in each connection's operations chain
    // behind the setRemoteDescription() called just before it.
    await a.setLocalDescription();
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription();
    await a.setRemoteDescription(b.localDescription);
    await opened;
    await both;
    return { a, b, channel, chat, receiver: remote.bench, chatEcho: remote.chat };
  }
  const percentile = (values, p) => {
    const sorted = [...values].sort((x, y) => x - y);
    return sorted.length ? sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1] : NaN;
  };

  const payload = new Uint8Array(messageSize);
  for (let i = 0; i < messageSize; i += 65536) crypto.getRandomValues(payload.subarray(i, i + 65536));

  const figures = [];
  for (let run = 0; run < runs; run++) {
    const { a, b, channel, chat, receiver, chatEcho } = await connectPair();
    receiver.binaryType = 'arraybuffer';
    chat.binaryType = 'arraybuffer';
    chatEcho.onmessage = (e) => chatEcho.send(e.data);
    const sentAt = [];
    const roundTrips = [];
    let allEchoed = null;
    chat.onmessage = (e) => {
      roundTrips.push(performance.now() - sentAt[new DataView(e.data).getUint32(0)]);
      if (allEchoed && roundTrips.length === sentAt.length) allEchoed();
    };
    let received = 0;
    const done = new Promise((resolve) => {
      receiver.onmessage = (e) => {
        received += e.data.byteLength;
        if (received >= bytes) resolve(performance.now());
      };
    });
    let sent = 0;
    // Keeps between bufferLow and bufferHigh bytes queued: the channel
    // never starves and memory stays bounded.
    const pump = () => {
      while (sent < bytes && channel.bufferedAmount <= bufferHigh) {
        const n = Math.min(messageSize, bytes - sent);
        channel.send(n === messageSize ? payload : payload.subarray(0, n));
        sent += n;
      }
    };
    const chatOnce = () => {
      const message = new Uint8Array(chatSize);
      new DataView(message.buffer).setUint32(0, sentAt.length);
      sentAt.push(performance.now());
      chat.send(message);
    };
    channel.bufferedAmountLowThreshold = bufferLow;
    channel.onbufferedamountlow = pump;
    const start = performance.now();
    pump();
    chatOnce();
    const ticker = setInterval(chatOnce, chatInterval);
    const end = await done;
    clearInterval(ticker);
    if (roundTrips.length < sentAt.length) await new Promise((resolve) => (allEchoed = resolve));
    if (received !== bytes) throw new Error(`received ${received} bytes, sent ${bytes}`);
    figures.push([bytes / ((end - start) / 1000) / 1e6, percentile(roundTrips, 0.5), percentile(roundTrips, 0.95)]);
    a.close();
    b.close();
  }
  return figures;
}

/** ms from createOffer() to the channel open on both sides, per run. */
async function pageConnect({ runs, warmup, rtt }) {
  async function once() {
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    let proxied = false;
    a.onicecandidate = (e) => e.candidate && !rtt && b.addIceCandidate(e.candidate);
    b.onicecandidate = async (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      if (!rtt) return a.addIceCandidate(e.candidate);
      if (proxied || !/ udp /i.test(e.candidate.candidate)) return;
      proxied = true;
      const candidate = await window.natterProxy(e.candidate.candidate);
      await a.addIceCandidate({ candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex });
    };
    const channel = a.createDataChannel('bench');
    const offererOpen = new Promise((resolve) => (channel.onopen = resolve));
    const answererOpen = new Promise((resolve) => {
      b.ondatachannel = (e) => (e.channel.readyState === 'open' ? resolve() : (e.channel.onopen = resolve));
    });
    const start = performance.now();
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
    await Promise.all([offererOpen, answererOpen]);
    const ms = performance.now() - start;
    a.close();
    b.close();
    return ms;
  }
  for (let i = 0; i < warmup; i++) await once();
  const figures = [];
  for (let i = 0; i < runs; i++) figures.push(await once());
  return figures;
}

/** The answering side of the offerer protocol (see the header), over a WebSocket to this process. */
async function pageAnswer({ runs, warmup, wsUrl }) {
  const ws = new WebSocket(wsUrl);
  const inbox = [];
  let waiting = null;
  let echoed = null;
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === 'echo') echoed?.();
    else if (waiting) {
      const w = waiting;
      waiting = null;
      w(msg);
    } else inbox.push(msg);
  };
  const closed = new Promise((_, reject) => (ws.onclose = () => reject(new Error('the offerer went away (see its stderr)'))));
  closed.catch(() => {});
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`no WebSocket to ${wsUrl}`));
  });
  const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : Promise.race([new Promise((r) => (waiting = r)), closed]));
  const expect = async (type) => {
    const msg = await next();
    if (msg.type !== type) throw new Error(`offerer sent ${JSON.stringify(msg).slice(0, 200)}, expected "${type}"`);
    return msg;
  };
  const send = (msg) => ws.send(JSON.stringify(msg));

  // The relay's own cost, for scale: this process answers "echo" itself.
  const echoes = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    const echo = new Promise((resolve) => (echoed = resolve));
    send({ type: 'echo' });
    await Promise.race([echo, closed]);
    echoes.push(performance.now() - t);
  }
  echoes.sort((x, y) => x - y);

  async function once() {
    await expect('ready');
    const pc = new RTCPeerConnection();
    pc.onicecandidate = (e) =>
      send(e.candidate ? { type: 'candidate', candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex } : { type: 'end-of-candidates' });
    const pageOpen = new Promise((resolve) => {
      pc.ondatachannel = (e) => (e.channel.readyState === 'open' ? resolve() : (e.channel.onopen = resolve));
    });
    const start = performance.now();
    send({ type: 'start' });
    const offer = await expect('offer');
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: 'answer', sdp: pc.localDescription.sdp });
    // Both opens are awaited; meanwhile the offerer's candidates arrive.
    const offererOpen = (async () => {
      for (;;) {
        const msg = await next();
        if (msg.type === 'candidate') await pc.addIceCandidate({ candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex });
        else if (msg.type === 'end-of-candidates') await pc.addIceCandidate();
        else if (msg.type === 'open') return;
        else throw new Error(`offerer sent "${msg.type}" before "open"`);
      }
    })();
    await Promise.all([pageOpen, offererOpen]);
    const ms = performance.now() - start;
    send({ type: 'close' });
    pc.close();
    return ms;
  }

  for (let i = 0; i < warmup; i++) await once();
  const figures = [];
  for (let i = 0; i < runs; i++) figures.push(await once());
  ws.close();
  return { figures, echoMs: echoes[echoes.length >> 1] };
}

// ---- in node ------------------------------------------------------------------------

/** Runs CMD and relays its stdout lines to the page's WebSocket and back. */
async function relayToOfferer(cmd, httpServer) {
  const { WebSocketServer } = requireTests('ws');
  const server = new WebSocketServer({ server: httpServer });
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  child.on('error', (e) => fail(`cannot run ${cmd.join(' ')}: ${e.message}`));
  // 'close' comes after the last line of its stdout, unlike 'exit'.
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  let gone = false;
  let finished = false;
  let socket = null;
  const early = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      JSON.parse(line);
    } catch {
      process.stderr.write(`offerer printed a line that is not JSON: ${line.slice(0, 200)}\n`);
      return;
    }
    if (socket) socket.send(line);
    else early.push(line);
  });
  server.on('connection', (ws) => {
    socket = ws;
    for (const line of early.splice(0)) ws.send(line);
    if (gone) ws.close();
    ws.on('message', (data) => {
      if (JSON.parse(data).type === 'echo') ws.send(data.toString());
      else child.stdin.write(`${data}\n`);
    });
  });
  exited.then(({ code, signal }) => {
    gone = true;
    socket?.close();
    if (code !== 0 && !finished) process.stderr.write(`offerer exited with ${signal || code}\n`);
  });
  return {
    url: `ws://127.0.0.1:${httpServer.address().port}/`,
    async stop() {
      finished = true;
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const result = await exited;
      clearTimeout(timer);
      server.close();
      return result;
    },
  };
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      browser: { type: 'string', default: 'chromium' },
      'field-trials': { type: 'string', default: '' },
      rtt: { type: 'string', default: '0' },
      impair: { type: 'string', default: '' },
      'chat-interval': { type: 'string', default: '50' },
      'chat-size': { type: 'string', default: '100' },
      runs: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      bytes: { type: 'string', default: '50000000' },
      'message-size': { type: 'string', default: '16384' },
      'buffer-low': { type: 'string', default: String(1 << 20) },
      'buffer-high': { type: 'string', default: String(4 << 20) },
    },
  });
  const [mode, ...cmd] = positionals;
  const num = (name) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 0) fail(`--${name} wants a whole number, got ${values[name]}`);
    return n;
  };
  const runs = num('runs');
  const warmup = num('warmup');
  if (!['datachannel', 'connect', 'answer'].includes(mode)) fail('usage: chromium_pair.mjs datachannel|connect|answer [options] [-- CMD ARG...]');
  if (mode === 'answer' && cmd.length === 0) fail('answer needs the offerer command after --');
  if (!['chromium', 'firefox'].includes(values.browser)) fail(`--browser chromium or firefox, not ${values.browser}`);
  if (values.browser === 'firefox' && mode === 'datachannel') fail('datachannel runs in Chromium only');

  const chromium = await launch(values.browser, values['field-trials']);
  const { page } = chromium;
  let figures;
  try {
    if (mode === 'datachannel') {
      const o = { runs, bytes: num('bytes'), messageSize: num('message-size'), bufferLow: num('buffer-low'), bufferHigh: num('buffer-high') };
      Object.assign(o, { rtt: num('rtt'), chatInterval: num('chat-interval'), chatSize: num('chat-size') });
      if (o.messageSize < 1 || o.bytes < 1) fail('--bytes and --message-size must be at least 1');
      if (o.chatSize < 4 || o.chatInterval < 1) fail('--chat-size must be at least 4 and --chat-interval at least 1');
      if (o.rtt > 0 && !values.impair) fail('--rtt needs --impair PATH, the natter-impair binary');
      const proxies = [];
      if (o.rtt > 0) {
        await page.exposeFunction('natterProxy', async (candidate) => {
          const proxy = await behindImpair(values.impair, candidate, o.rtt / 2);
          proxies.push(proxy);
          return proxy.candidate;
        });
      }
      try {
        figures = (await page.evaluate(pageDataChannel, o)).map((run) => run.map((f) => f.toFixed(3)).join(' '));
      } finally {
        for (const p of proxies) p.close();
      }
    } else if (mode === 'connect') {
      const rtt = num('rtt');
      const proxies = [];
      if (rtt > 0) await page.exposeFunction('natterProxy', (candidate) => behindProxy(candidate, rtt / 2, proxies));
      try {
        figures = await page.evaluate(pageConnect, { runs, warmup, rtt });
      } finally {
        for (const p of proxies) p.close();
      }
    } else {
      const relay = await relayToOfferer(cmd, chromium.server);
      try {
        const result = await page.evaluate(pageAnswer, { runs, warmup, wsUrl: relay.url });
        figures = result.figures;
        process.stderr.write(`relay: page <-> driver WebSocket round trip ${result.echoMs.toFixed(3)} ms (median of 20)\n`);
      } finally {
        const { code, signal } = await relay.stop();
        if (code !== 0 && figures) fail(`the offerer exited with ${signal || code} after the last run`);
      }
    }
  } finally {
    await chromium.close();
  }
  for (const f of figures) process.stdout.write(`${typeof f === 'string' ? f : f.toFixed(3)}\n`);
}

// natter_chromium.mjs imports launch() without running a mode.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => fail(e.stack || e.message));
}
