// Helpers of the natter-io interop tests: `natter echo`
// (crates/natter-server/src/echo/) on a free port as a server, or run
// once as a client (`--client URL`), headless Chromium (the flags, waits
// and ports of tests/browser/harness.mjs, whose playwright-core install
// this suite reuses) and headless Firefox (puppeteer-core, from the same
// install), the page-side code that drives an RTCPeerConnection against
// natter's echo server in either browser, and a browser echo server
// that answers natter's offers.
//
// Environment:
//   NATTER_BIN       the natter binary [target/release/natter]
//   NATTER_EXAMPLES  natter-io's examples [target/release/examples]
//   CHROMIUM         the browser [/usr/bin/chromium]
//   NATTER_FIREFOX   Firefox [/usr/bin/firefox-esr]
//   NATTER_PYTHON    the Python with aiortc [target/py/bin/python]

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

import { CHROMIUM, CHROMIUM_ARGS, NATTER_BIN, ROOT, freePort, launchFirefox, until } from '../browser/harness.mjs';

// Firefox is tests/browser's (harness.mjs there): startEcho and runClient
// check for the natter binary, so the bench that borrows Firefox needs none.
export { launchFirefox, until };

export const EXAMPLES = path.resolve(ROOT, process.env.NATTER_EXAMPLES || 'target/release/examples');
export const ARTIFACTS = path.join(ROOT, 'target/peer');

/** The namespace's UDP RcvbufErrors (RFC 4113 udpInErrors' cause): datagrams a full socket buffer dropped. */
export function udpReceiveBufferErrors() {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  return Number(values[names.indexOf('RcvbufErrors')]);
}

/** Fails with instructions when Chromium, playwright-core or the natter binary is missing. */
export function loadChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: install it with "apt-get install chromium" (scripts/test-peer does)`);
  }
  let playwright;
  try {
    playwright = createRequire(path.join(ROOT, 'tests/browser/package.json'))('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is missing: run "npm ci --prefix tests/browser" (scripts/test-peer does). ${e.message}`);
  }
  loadNatterBin();
  return playwright.chromium;
}

/**
 * Headless Chromium. With `mdns: true`, the flags that make Chromium
 * hide its addresses behind `.local` names as it does for any page
 * without camera permission: no fake media UI (which grants that
 * permission) and WebRtcHideLocalIpsWithMdns left on. `fieldTrials`
 * goes to --force-fieldtrials (say 'WebRTC-Sctp-Snap/Enabled/').
 */
export async function launchBrowser({ mdns = false, fieldTrials = null } = {}) {
  const chromium = loadChromium();
  const args = mdns
    ? CHROMIUM_ARGS.filter((a) => !a.startsWith('--use-fake-ui') && !a.includes('WebRtcHideLocalIpsWithMdns'))
    : [...CHROMIUM_ARGS];
  if (fieldTrials) args.push(`--force-fieldtrials=${fieldTrials}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

const RUST_ENV = () => ({ ...process.env, RUST_LOG: process.env.RUST_LOG || 'info,natter_io=debug', NO_COLOR: '1' });

/**
 * Starts a peer's HTTP server (`command argv`, its output in
 * target/peer/NAME.log) and waits for `url`/healthz.
 */
export async function startServer({ what, name, command, argv, url, env = process.env }) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${name}.log`);
  const log = fs.createWriteStream(logPath);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  let exited = false;
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve({ code, signal }); }));
  await until(
    async () => {
      if (exited) throw new Error(`${what} exited early; see ${logPath}`);
      return (await fetch(`${url}/healthz`)).ok;
    },
    { timeout: 15000, interval: 50, what: `${what} on ${url}/healthz (log: ${logPath})` },
  );
  return {
    url,
    logPath,
    /** GET /status: what the peer saw of every connection. */
    async status() {
      return (await fetch(`${url}/status`)).json();
    },
    log: () => fs.readFileSync(logPath, 'utf8'),
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const result = await exit;
      clearTimeout(timer);
      log.end();
      return result;
    },
  };
}

/**
 * Runs a peer's one-shot check (`command argv`) to its end, its stderr in
 * target/peer/NAME.log. Resolves with its exit code, its last stdout line
 * as JSON (or null) and its log; never rejects for a failed check.
 */
export async function runOnce({ name, command, argv, env = process.env, timeout = 180000 }) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${name}.log`);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  const log = fs.createWriteStream(logPath);
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.pipe(log);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
  const { code, signal } = await new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  await new Promise((resolve) => log.end(resolve));
  const text = fs.readFileSync(logPath, 'utf8');
  let summary = null;
  try {
    summary = JSON.parse(stdout.trim().split('\n').pop());
  } catch {}
  return { code, signal, summary, stdout, logPath, log: text, tail: text.slice(-4000) };
}

/**
 * A 3 s VP8 IVF (320x240, 90 frames) and Opus Ogg that ffmpeg makes in
 * target/peer/NAME-media-files, for natter's client (`--video`,
 * `--audio`) to send.
 */
export function mediaFiles(name) {
  const dir = path.join(ARTIFACTS, `${name}-media-files`);
  fs.mkdirSync(dir, { recursive: true });
  const video = path.join(dir, 'video.ivf');
  const audio = path.join(dir, 'audio.ogg');
  try {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-t', '3', '-c:v', 'libvpx', '-g', '30', '-b:v', '500k', video]);
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '3', '-c:a', 'libopus', '-b:a', '32k', audio]);
  } catch (e) {
    throw new Error(`ffmpeg could not make the media files (install it with "apt-get install ffmpeg"; scripts/setup does): ${e.message}`);
  }
  return { video, audio };
}

/** The sizes of the data channel tests' 1,000 messages, 1 byte to 256 KiB: the edges first, then log-uniform. */
export function mixedSizes() {
  const edges = [1, 2, 1199, 1200, 1201, 16383, 16384, 16385, 65535, 65536, 65537, 262143, 262144, 262144];
  let seed = 7;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  const out = [...edges];
  while (out.length < 1000) out.push(Math.max(1, Math.min(262144, Math.round(Math.exp(random() * Math.log(262144))))));
  return out;
}

/** Starts `natter echo` and waits for /healthz. */
export async function startEcho({ name, addresses = ['127.0.0.1'], args = [] }) {
  loadNatterBin();
  const port = await freePort();
  const argv = ['echo', '--listen', `127.0.0.1:${port}`, ...addresses.flatMap((a) => ['--address', a]), ...args];
  const url = `http://127.0.0.1:${port}`;
  return startServer({ what: 'natter echo', name: `${name}.echo`, command: NATTER_BIN, argv, url, env: RUST_ENV() });
}

/**
 * A page of `site` (the echo server, or the browser echo server's own
 * blank page), with its console kept in target/peer and `helpers`
 * installed.
 */
export async function openPage(browser, site, name, helpers = pageHelpers) {
  // playwright-core's Chromium, or puppeteer-core's Firefox (launchFirefox).
  const context = await (browser.newContext ? browser.newContext() : browser.createBrowserContext());
  const page = await context.newPage();
  const problems = [];
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const consoleLog = fs.createWriteStream(path.join(ARTIFACTS, `${name}.console.log`));
  page.on('pageerror', (e) => {
    problems.push(`pageerror: ${e.message}`);
    consoleLog.write(`pageerror ${e.stack || e.message}\n`);
  });
  page.on('console', (m) => consoleLog.write(`${m.type()} ${m.text()}\n`));
  page.on('close', () => consoleLog.end());
  await page.goto(site.url);
  await page.evaluate(`(${helpers.toString()})()`);
  return { page, context, problems };
}

/**
 * Installed in the page as `window.t`. Everything waits on events with a
 * deadline, and a timeout says how far it got.
 */
function pageHelpers() {
  const within = (ms, what, promise, progress = () => '') =>
    Promise.race([
      promise,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what} ${progress()}`)), ms)),
    ]);
  const event = (target, name) => new Promise((resolve) => target.addEventListener(name, resolve, { once: true }));
  const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const sha256 = async (bytes) => hex(await crypto.subtle.digest('SHA-256', bytes));
  const bytesOf = (data) => (typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data));

  // xorshift32: the same messages every run.
  const rng = (seed) => () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  const CHARS = ['a', 'b', 'z', '0', ' ', 'é', '€', '😀'];
  const CHAR_BYTES = CHARS.map((c) => new TextEncoder().encode(c).length);
  /** A string of exactly `size` UTF-8 bytes, with 2-, 3- and 4-byte characters. */
  const text = (size, random) => {
    const parts = [];
    let bytes = 0;
    while (bytes < size - 4) {
      const i = Math.floor(random() * CHARS.length);
      parts.push(CHARS[i]);
      bytes += CHAR_BYTES[i];
    }
    parts.push('x'.repeat(size - bytes));
    return parts.join('');
  };
  const binary = (size) => {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
    return out.buffer;
  };

  window.t = {
    pc: null,
    channels: {},
    /**
     * Offer with a data channel 'echo', wait for gathering, POST the
     * offer, apply the answer, wait for 'echo' to open. Returns what
     * happened at each stage; an error names the stage.
     */
    async connect() {
      const out = { stage: 'offer' };
      try {
        const pc = (this.pc = new RTCPeerConnection());
        const dc = (this.channels.echo = pc.createDataChannel('echo'));
        dc.binaryType = 'arraybuffer';
        pc.addEventListener('connectionstatechange', () => console.log(`connectionState ${pc.connectionState}`));
        await pc.setLocalDescription(await pc.createOffer());
        out.stage = 'gathering';
        await within(10000, 'ICE gathering to complete', new Promise((resolve) => {
          if (pc.iceGatheringState === 'complete') resolve();
          pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        }));
        out.offer = pc.localDescription.sdp;
        out.stage = 'POST /offer';
        const res = await fetch('/offer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(pc.localDescription) });
        if (!res.ok) throw new Error(`POST /offer: ${res.status} ${await res.text()}`);
        const answer = await res.json();
        out.answer = answer.sdp;
        out.stage = 'setRemoteDescription(answer)';
        await pc.setRemoteDescription(answer);
        out.stage = "the 'echo' channel to open";
        if (dc.readyState !== 'open') {
          await within(15000, "the 'echo' channel to open", event(dc, 'open'), () => `(connectionState ${pc.connectionState}, iceConnectionState ${pc.iceConnectionState})`);
        }
        out.stage = 'open';
      } catch (e) {
        out.error = `${out.stage}: ${e.name}: ${e.message}`;
      }
      return out;
    },

    /** Opens another channel and waits for it to open. */
    async open(label, init) {
      const dc = (this.channels[label] = this.pc.createDataChannel(label, init));
      dc.binaryType = 'arraybuffer';
      await within(10000, `channel '${label}' to open`, event(dc, 'open'));
      return { id: dc.id, ordered: dc.ordered, maxRetransmits: dc.maxRetransmits };
    },

    /**
     * Sends `sizes.length` messages on `label` (strings at even indexes,
     * ArrayBuffers at odd ones), keeping bufferedAmount under 4 MiB, and
     * checks every echo: same type, same length, same SHA-256, and (for
     * an ordered channel) same position. With `window`, at most that
     * many messages are out without their echo. Returns the mismatches.
     */
    async burst(label, sizes, { seed = 1, ordered = true, timeout = 120000, window = 0 } = {}) {
      const dc = this.channels[label];
      const random = rng(seed);
      const sent = [];
      const received = [];
      let done;
      const all = new Promise((resolve) => (done = resolve));
      const onMessage = async (e) => {
        const bytes = bytesOf(e.data);
        received.push({ kind: typeof e.data === 'string' ? 'string' : 'binary', size: bytes.length, sha: sha256(bytes) });
        if (received.length === sizes.length) done();
      };
      dc.addEventListener('message', onMessage);
      dc.bufferedAmountLowThreshold = 1 << 20;
      const started = performance.now();
      let bytesSent = 0;
      let preparing = 0;
      for (let i = 0; i < sizes.length; i++) {
        const before = performance.now();
        const data = i % 2 === 0 ? text(sizes[i], random) : binary(sizes[i]);
        const bytes = bytesOf(data);
        sent.push({ kind: typeof data === 'string' ? 'string' : 'binary', size: bytes.length, sha: await sha256(bytes) });
        preparing += performance.now() - before;
        if (dc.bufferedAmount > 4 << 20) {
          await within(30000, 'bufferedamountlow', event(dc, 'bufferedamountlow'), () => `(sent ${i}, echoed ${received.length})`);
        }
        while (window && i - received.length >= window) {
          await within(timeout, `an echo on '${label}' (${window} out)`, event(dc, 'message'), () => `(sent ${i}, echoed ${received.length})`);
        }
        dc.send(data);
        bytesSent += bytes.length;
      }
      await within(timeout, `${sizes.length} echoes on '${label}'`, all, () => `(got ${received.length}, channel ${dc.readyState})`);
      const ms = performance.now() - started;
      dc.removeEventListener('message', onMessage);
      for (const r of received) r.sha = await r.sha;
      const key = (m) => `${m.kind}/${m.size}/${m.sha}`;
      const mismatches = [];
      if (ordered) {
        for (let i = 0; i < sent.length; i++) {
          if (key(sent[i]) !== key(received[i])) mismatches.push({ index: i, sent: sent[i], received: received[i] });
        }
      } else {
        const want = sent.map(key).sort();
        const got = received.map(key).sort();
        for (let i = 0; i < want.length; i++) if (want[i] !== got[i]) mismatches.push({ index: i, sent: want[i], received: got[i] });
      }
      return { count: received.length, bytes: bytesSent, ms, preparingMs: preparing, mismatches: mismatches.slice(0, 5), mismatchCount: mismatches.length };
    },

    /**
     * Sends `count` messages one at a time (strings and ArrayBuffers of
     * up to 1000 bytes), each after the echo of the one before, and
     * checks each echo.
     */
    async pingPong(label, count) {
      const dc = this.channels[label];
      const random = rng(9);
      const mismatches = [];
      for (let i = 0; i < count; i++) {
        const size = 1 + Math.floor(random() * 1000);
        const data = i % 2 === 0 ? text(size, random) : binary(size);
        const echoed = event(dc, 'message');
        dc.send(data);
        const e = await within(2000, `the echo of message ${i} on '${label}'`, echoed);
        const want = `${typeof data}/${await sha256(bytesOf(data))}`;
        const got = `${typeof e.data}/${await sha256(bytesOf(e.data))}`;
        if (want !== got) mismatches.push({ index: i, want, got });
      }
      return { count, mismatches };
    },

    /** Closes `label` from the page and waits for its 'close'. */
    async close(label) {
      const dc = this.channels[label];
      const closed = event(dc, 'close');
      dc.close();
      await within(10000, `'close' of '${label}'`, closed, () => `(readyState ${dc.readyState})`);
      return dc.readyState;
    },

    /** Sends `message` and waits for natter to close the channel. */
    async closedByPeer(label, message) {
      const dc = this.channels[label];
      const closed = event(dc, 'close');
      dc.send(message);
      await within(10000, `natter to close '${label}'`, closed, () => `(readyState ${dc.readyState})`);
      return dc.readyState;
    },

    /** getStats: the selected pair, DTLS and the data channels. */
    async stats() {
      const report = await this.pc.getStats();
      const out = { channels: [] };
      report.forEach((r) => {
        if (r.type === 'transport') {
          Object.assign(out, {
            dtlsState: r.dtlsState, dtlsRole: r.dtlsRole, tlsVersion: r.tlsVersion, dtlsCipher: r.dtlsCipher,
            iceState: r.iceState, iceRole: r.iceRole, bytesSent: r.bytesSent, bytesReceived: r.bytesReceived,
            pairId: r.selectedCandidatePairId,
          });
        }
        if (r.type === 'data-channel') out.channels.push({ label: r.label, state: r.state, messagesSent: r.messagesSent, messagesReceived: r.messagesReceived });
      });
      const pair = out.pairId && report.get(out.pairId);
      if (pair) {
        const c = (id) => {
          const x = report.get(id);
          return x && `${x.candidateType} ${x.protocol} ${x.address}:${x.port}`;
        };
        out.pair = { local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId), state: pair.state, nominated: pair.nominated, rttMs: pair.currentRoundTripTime * 1000 };
      }
      delete out.pairId;
      return out;
    },
  };
}

// ---- natter as the offerer ----------------------------------------------------------

/**
 * Runs `natter echo --client URL`: natter offers, the server at URL
 * answers, and natter checks the echoes
 * (crates/natter-server/src/echo/client.rs). See runOnce for what it
 * resolves with.
 */
export async function runClient({ name, url, addresses = ['127.0.0.1'], args = [] }) {
  loadNatterBin();
  const argv = ['echo', '--client', url, ...addresses.flatMap((a) => ['--address', a]), ...args];
  return runOnce({ name: `${name}.client`, command: NATTER_BIN, argv, env: RUST_ENV() });
}

// ---- aiortc (tests/peer/aiortc_echo.py) ----------------------------------------------

export const PYTHON = path.resolve(ROOT, process.env.NATTER_PYTHON || 'target/py/bin/python');
const AIORTC_ECHO = path.join(ROOT, 'tests/peer/aiortc_echo.py');

/** Fails with instructions when the venv or aiortc in it is missing. */
export function loadAiortc() {
  const hint = 'run scripts/setup (it makes the venv target/py), or "target/py/bin/pip install -r tests/requirements.txt" in an existing one; scripts/test-peer does';
  if (!fs.existsSync(PYTHON)) throw new Error(`no Python venv at ${PYTHON}: ${hint}`);
  const r = spawnSync(PYTHON, ['-c', 'import aiortc'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`aiortc is missing from ${PYTHON}: ${hint}. ${r.stderr}`);
}

/** aiortc_echo.py's server on a free port, once /healthz answers. */
export async function startAiortc({ name, address = '127.0.0.1' }) {
  loadAiortc();
  const port = await freePort();
  const argv = [AIORTC_ECHO, 'server', '--listen', `127.0.0.1:${port}`, '--address', address];
  return startServer({ what: 'the aiortc echo server', name: `${name}.aiortc`, command: PYTHON, argv, url: `http://127.0.0.1:${port}` });
}

/** aiortc_echo.py's client against URL; see runOnce for what it resolves with. */
export async function runAiortcClient({ name, url, address = '127.0.0.1', args = [] }) {
  loadAiortc();
  const argv = [AIORTC_ECHO, 'client', url, '--address', address, ...args];
  return runOnce({ name: `${name}.aiortc-client`, command: PYTHON, argv });
}

/** Fails with instructions when the natter binary (`natter echo`) is missing. */
export function loadNatterBin() {
  if (!fs.existsSync(NATTER_BIN)) {
    throw new Error(`no natter binary at ${NATTER_BIN}: run "cargo build --release -p natter-server" (scripts/test-peer does)`);
  }
}

/**
 * A browser echo server of the webrtc-echoes convention, in a page of
 * `browser` (Chromium or Firefox): `POST /offer` (JSON) makes a fresh
 * RTCPeerConnection in one page answer it, once its gathering
 * completed; every data channel message comes back, `close-me` makes
 * the page close that channel, and every audio and video track is sent
 * back on its own transceiver (the browser decodes and encodes it
 * again). `?setup=passive` (or `active`) rewrites the answer's a=setup
 * before the browser applies it, to choose its DTLS role.
 * `connection(i)` is what the page saw of the i-th connection (see
 * answererHelpers).
 */
export async function startAnswerer({ browser, name }) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let page;
  const server = http.createServer(async (req, res) => {
    const reply = (status, type, body) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    try {
      const { pathname, searchParams } = new URL(req.url, url);
      if (req.method === 'GET' && pathname === '/') return reply(200, 'text/html', '<!doctype html><title>browser echo</title>');
      if (req.method !== 'POST' || pathname !== '/offer') return reply(404, 'text/plain', 'not found');
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const offer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (offer.type !== 'offer') return reply(400, 'text/plain', `expected {"type":"offer"}, got ${JSON.stringify(offer.type)}`);
      const setup = searchParams.get('setup');
      const answer = await page.evaluate(({ offer, setup }) => window.answerer.answer(offer, setup), { offer, setup });
      if (answer.error) return reply(500, 'text/plain', answer.error);
      reply(200, 'application/json', JSON.stringify(answer));
    } catch (e) {
      reply(500, 'text/plain', `the browser echo server failed: ${e.message}`);
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const opened = await openPage(browser, { url }, name, answererHelpers);
  page = opened.page;
  return {
    url,
    page,
    problems: opened.problems,
    /** What the page saw of its `index`-th connection. */
    connection: (index) => page.evaluate((i) => window.answerer.connection(i), index),
    async stop() {
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Installed in the browser echo server's page as `window.answerer`.
 * Each connection keeps its channels (label, options, counts, who
 * closed them), errors, and a getStats snapshot taken when `close-me`
 * arrives (the transport is still up then; natter closes the connection
 * when its check ends).
 */
function answererHelpers() {
  const within = (ms, what, promise) =>
    Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))]);
  const HIGH_WATER = 8 << 20;

  async function stats(pc) {
    const report = await pc.getStats();
    const out = {};
    report.forEach((r) => {
      if (r.type === 'transport') {
        Object.assign(out, { dtlsState: r.dtlsState, dtlsRole: r.dtlsRole, tlsVersion: r.tlsVersion, iceRole: r.iceRole, pairId: r.selectedCandidatePairId });
      }
    });
    const pair = out.pairId && report.get(out.pairId);
    if (pair) {
      const c = (id) => {
        const x = report.get(id);
        return x && { type: x.candidateType, address: x.address, port: x.port };
      };
      out.pair = { local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId), state: pair.state, nominated: pair.nominated };
    }
    delete out.pairId;
    return out;
  }

  function echo(entry, dc) {
    dc.binaryType = 'arraybuffer';
    const info = { label: dc.label, id: dc.id, ordered: dc.ordered, maxRetransmits: dc.maxRetransmits, messages: 0, bytes: 0, state: dc.readyState, closedBy: null };
    entry.channels.push(info);
    // Echoes wait here while the browser's own queue is long.
    const waiting = [];
    const drain = () => {
      while (waiting.length && dc.bufferedAmount <= HIGH_WATER) {
        const data = waiting.shift();
        try {
          dc.send(data);
        } catch (e) {
          entry.errors.push(`echo on '${dc.label}': ${e.message}`);
        }
      }
    };
    dc.bufferedAmountLowThreshold = 1 << 20;
    dc.addEventListener('bufferedamountlow', drain);
    dc.addEventListener('open', () => (info.state = 'open'));
    dc.addEventListener('message', async (e) => {
      if (e.data === 'close-me') {
        info.closedBy = 'browser';
        entry.stats = await stats(entry.pc).catch((x) => ({ error: x.message }));
        dc.close();
        return;
      }
      info.messages++;
      info.bytes += typeof e.data === 'string' ? new TextEncoder().encode(e.data).length : e.data.byteLength;
      waiting.push(e.data);
      drain();
    });
    dc.addEventListener('close', () => {
      info.state = 'closed';
      info.closedBy ??= 'peer';
    });
  }

  window.answerer = {
    connections: [],
    /** Answers `offer` once gathering completed; `{type, sdp}` or `{error}` naming the stage. */
    async answer(offer, setup) {
      let stage = 'setRemoteDescription(offer)';
      const entry = { channels: [], tracks: [], errors: [], stats: null, offer: offer.sdp, answer: null, states: [] };
      try {
        const pc = (entry.pc = new RTCPeerConnection());
        this.connections.push(entry);
        pc.addEventListener('datachannel', (e) => echo(entry, e.channel));
        // Media comes back on the transceiver it arrived on, set up
        // before the answer is made so that the answer says sendrecv.
        const reflecting = [];
        pc.addEventListener('track', (e) => {
          entry.tracks.push(e.track.kind);
          e.transceiver.direction = 'sendrecv';
          reflecting.push(e.transceiver.sender.replaceTrack(e.track));
        });
        pc.addEventListener('connectionstatechange', () => {
          entry.states.push(pc.connectionState);
          console.log(`connection ${this.connections.indexOf(entry)}: ${pc.connectionState}`);
        });
        await pc.setRemoteDescription(offer);
        stage = 'replaceTrack (reflecting the offered media)';
        await Promise.all(reflecting);
        stage = 'createAnswer';
        const answer = await pc.createAnswer();
        if (setup) answer.sdp = answer.sdp.replace(/^a=setup:[a-z]+/gm, `a=setup:${setup}`);
        stage = `setLocalDescription(answer${setup ? `, a=setup:${setup}` : ''})`;
        await pc.setLocalDescription(answer);
        stage = 'ICE gathering to complete';
        await within(10000, stage, new Promise((resolve) => {
          if (pc.iceGatheringState === 'complete') resolve();
          pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        }));
        entry.answer = pc.localDescription.sdp;
        return { type: 'answer', sdp: pc.localDescription.sdp };
      } catch (e) {
        entry.errors.push(`${stage}: ${e.message}`);
        return { error: `${stage}: ${e.name}: ${e.message}` };
      }
    },
    connection(i) {
      const entry = this.connections[i];
      if (!entry) return null;
      const { pc, ...rest } = entry;
      return { ...rest, connectionState: pc?.connectionState };
    },
  };
}
