// Shared helpers of the browser tests: a `natter serve` per test file on
// free ports, headless Chromium (playwright-core) and Firefox ESR
// (puppeteer-core) with a fake camera and microphone, one browser
// context per participant, and waits on real conditions (the DOM,
// getStats) with deadlines instead of sleeps.
//
// Environment:
//   NATTER_BIN           the natter binary [target/release/natter]
//   CHROMIUM             the browser [/usr/bin/chromium]
//   NATTER_FIREFOX       Firefox [/usr/bin/firefox-esr]
//   NATTER_SCREENSHOTS=1 write screenshots to docs/screenshots/ instead of target/browser/
//   NATTER_WEB_DIR=DIR   serve the web client from DIR instead of the copy
//                        embedded in the binary (edit, rerun, no rebuild)

import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const NATTER_BIN = path.resolve(ROOT, process.env.NATTER_BIN || 'target/release/natter');
export const ARTIFACTS = path.join(ROOT, 'target/browser');
export const SCREENSHOTS = process.env.NATTER_SCREENSHOTS === '1' ? path.join(ROOT, 'docs/screenshots') : ARTIFACTS;

/** TESTING.md's flags, plus the usual headless set. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/** Fails with instructions when Chromium, playwright-core or natter is missing. */
export async function loadChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: install it with "apt-get install chromium" (scripts/test-browser does)`);
  }
  let playwright;
  try {
    playwright = await import('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is missing: run "npm ci --prefix tests/browser" (scripts/test-browser does). ${e.message}`);
  }
  if (!fs.existsSync(NATTER_BIN)) {
    throw new Error(`no natter binary at ${NATTER_BIN}: run "cargo build --release -p natter-server" (scripts/test-browser does)`);
  }
  return playwright.chromium;
}

/**
 * @param {{args?: string[], loopback?: boolean}} [o] flags beyond
 *   CHROMIUM_ARGS; `loopback: false` drops --allow-loopback-in-peer-connection,
 *   so Chromium gathers only on real interfaces (the veth), as Firefox does
 */
export async function launchBrowser({ args = [], loopback = true } = {}) {
  const chromium = await loadChromium();
  const base = loopback ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection');
  // launch() gives the browser a fresh temporary --user-data-dir.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...base, ...args] });
}

export const FIREFOX = process.env.NATTER_FIREFOX || '/usr/bin/firefox-esr';

/**
 * Headless Firefox ESR driven by puppeteer-core over WebDriver BiDi,
 * with a fake camera and microphone granted without a prompt and plain
 * host candidates (no `.local` names). It gathers no candidates on `lo`
 * nor without a default route: its tests need the `veth` namespace
 * (shared TESTING.md). Fails with instructions when Firefox or
 * puppeteer-core is missing.
 */
export async function launchFirefox() {
  if (!fs.existsSync(FIREFOX)) {
    throw new Error(`no Firefox at ${FIREFOX}: install it with "apt-get install firefox-esr" (scripts/setup, scripts/test-browser and scripts/test-peer do)`);
  }
  let puppeteer;
  try {
    puppeteer = (await import('puppeteer-core')).default;
  } catch (e) {
    throw new Error(`puppeteer-core is missing: run "npm ci --prefix tests/browser" (scripts/setup, scripts/test-browser and scripts/test-peer do). ${e.message}`);
  }
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.peerconnection.ice.obfuscate_host_addresses': false,
      // Remote audio plays without a user gesture.
      'media.autoplay.default': 0,
    },
  });
}

// ---- waiting ---------------------------------------------------------------------

/**
 * Calls `probe` until it returns something other than undefined/false,
 * and returns that. Past `timeout` ms, throws with `what` and the last
 * thing `describe` said about the state.
 */
export async function until(probe, { timeout = 20000, interval = 100, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    let error;
    try {
      last = await probe();
      if (last !== undefined && last !== false && last !== null) return last;
    } catch (e) {
      error = e;
    }
    if (Date.now() > deadline) {
      const state = describe ? await Promise.resolve(describe()).catch((e) => `(describe failed: ${e})`) : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${state}${error ? `; error: ${error.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// ---- natter CLI processes -------------------------------------------------------------

/**
 * `natter ARGS` as a child process whose stdout is JSON lines (the
 * caller passes `--json`): its events in order, its stderr, its exit,
 * `waitFor(predicate)` over all events (past and future), `type(line)`
 * to its stdin, and `kill()`. Everything it prints goes to
 * target/browser/LABEL.log.
 */
export function startNatter(label, args, { timeout = 30000 } = {}) {
  if (!fs.existsSync(NATTER_BIN)) throw new Error(`no natter binary at ${NATTER_BIN}: run "cargo build --release -p natter-server"`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${label}.log`);
  const log = fs.createWriteStream(logPath);
  const child = spawn(NATTER_BIN, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', NO_COLOR: '1' },
  });
  const events = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    log.write(chunk);
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) events.push(JSON.parse(line));
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    log.write(chunk);
    stderr += chunk;
  });
  child.stdin.on('error', () => {}); // a child that exited before reading
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    events,
    exited,
    logPath,
    get stderr() {
      return stderr;
    },
    /** Writes a line to its stdin (chat, or a /command). */
    type(line) {
      child.stdin.write(`${line}\n`);
    },
    waitFor(predicate, what, wait = timeout) {
      return until(() => events.find(predicate), {
        timeout: wait,
        what: `${label}: ${what}`,
        describe: () => `${JSON.stringify(events.slice(-8))} ${stderr.slice(-500)} (log: ${logPath})`,
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

// ---- ports and the server ------------------------------------------------------------

function tcpFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function udpFree(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port free for TCP and UDP on 127.0.0.1, below the TURN relay range. */
const taken = new Set();
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    if (taken.has(port)) continue;
    if ((await tcpFree(port)) && (await udpFree(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port');
}

/**
 * Starts `natter serve` and waits until /healthz answers.
 * @param {object} o
 * @param {string} o.name for the log file name
 * @param {boolean} [o.dev]
 * @param {number} [o.maxParticipants]
 * @param {number} [o.resumeMs]
 * @param {string[]} [o.args] more flags
 * @param {{port?: number, turnPort?: number, turnTlsPort?: number}} [o.ports]
 *   fixed ports (to restart a server where it was) instead of free ones
 * @param {string} [o.secret] instead of a random one
 * @param {string} [o.host] address to listen on and announce [127.0.0.1]; '::1' for IPv6
 * @param {{cert: string, pkey: string, ca: string}} [o.tls] PEM files for --cert and
 *   --pkey, and the PEM the test's own HTTP requests trust: HTTPS, WSS, TURN over TLS
 */
export async function startServer({ name, dev = true, maxParticipants, resumeMs, args = [], ports = {}, secret, host = '127.0.0.1', tls }) {
  secret ??= randomBytes(24).toString('hex');
  const port = ports.port ?? (await freePort());
  const turnPort = ports.turnPort ?? (await freePort());
  const turnTlsPort = ports.turnTlsPort ?? (await freePort());
  const hostPort = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const argv = ['serve', '--listen', hostPort, '--secret', secret, '--turn-port', String(turnPort), '--turn-tls-port', String(turnTlsPort), '--public-ip', host];
  if (tls) argv.push('--cert', tls.cert, '--pkey', tls.pkey);
  if (dev) argv.push('--dev');
  if (maxParticipants) argv.push('--max-participants', String(maxParticipants));
  if (resumeMs !== undefined) argv.push('--resume-ms', String(resumeMs));
  argv.push(...args);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${name}.server.log`);
  const log = fs.createWriteStream(logPath, { flags: 'a' });
  const child = spawn(NATTER_BIN, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1' },
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let hasExited = false;
  exited.then(() => (hasExited = true));

  const origin = `${tls ? 'https' : 'http'}://${hostPort}`;
  let url = origin;
  await until(
    async () => {
      if (hasExited) throw new Error(`natter serve exited early; see ${logPath}`);
      return (await get(`${origin}/healthz`, tls)).status === 200;
    },
    { timeout: 15000, interval: 50, what: `natter serve on ${url}/healthz (log: ${logPath})` },
  ).catch(async (e) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\n${fs.readFileSync(logPath, 'utf8').slice(-2000)}`);
  });

  let proxy = null;
  if (process.env.NATTER_WEB_DIR) {
    proxy = await webDirProxy(path.resolve(ROOT, process.env.NATTER_WEB_DIR), port, ports.webPort ?? 0);
    url = `http://127.0.0.1:${proxy.address().port}`;
  }

  return {
    name,
    url,
    wsUrl: `${tls ? 'wss' : 'ws'}://${hostPort}/ws`,
    port,
    secret,
    turnPort,
    turnTlsPort,
    ports: { port, turnPort, turnTlsPort, webPort: proxy?.address().port },
    logPath,
    exited,
    /** `natter token`: a join token for `room`. */
    token(room, { ttl, name: who } = {}) {
      const a = ['token', '--secret', secret, '--room', room];
      if (ttl !== undefined) a.push('--ttl', String(ttl));
      if (who) a.push('--name', who);
      return execFileSync(NATTER_BIN, a, { encoding: 'utf8' }).trim();
    },
    /** GET /metrics, parsed into name{labels} → number. */
    async metrics() {
      const { text } = await get(`${origin}/metrics`, tls);
      const out = new Map();
      for (const line of text.split('\n')) {
        const m = /^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
        if (m) out.set(m[1], Number(m[2]));
      }
      return out;
    },
    /** SIGTERM; resolves to {code, signal, ms} once it has exited (SIGKILL after 15 s). */
    async stop() {
      proxy?.close();
      proxy?.closeAllConnections();
      if (hasExited) return { ...(await exited), ms: 0 };
      const start = Date.now();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
      const result = await exited;
      clearTimeout(timer);
      log.end();
      return { ...result, ms: Date.now() - start };
    },
    /** `stop()`, asserting that `what` exited 0 on SIGTERM; resolves to the same. */
    async stopCleanly(what = 'natter serve') {
      const exit = await this.stop();
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `${what} did not exit cleanly (log: ${logPath})`);
      return exit;
    },
  };
}

/** GET `url` → {status, text}; over HTTPS trusting `tls.ca` (fetch cannot be given a CA). */
async function get(url, tls) {
  if (!tls) {
    const r = await fetch(url);
    return { status: r.status, text: await r.text() };
  }
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: fs.readFileSync(tls.ca) }, (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d) => (text += d));
        r.on('end', () => resolve({ status: r.statusCode, text }));
      })
      .on('error', reject);
  });
}

/**
 * A TCP proxy to `server` (HTTP and WebSocket alike) whose connections
 * the test can cut, as a network that drops out would: pages opened
 * through `proxy.server` reach natter only through it.
 */
export async function tcpProxy(server) {
  const upstream = Number(new URL(server.url).port);
  const sockets = new Set();
  let blocked = false;
  const listener = net.createServer((client) => {
    if (blocked) return client.resetAndDestroy();
    const up = net.connect(upstream, '127.0.0.1');
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(up);
    up.pipe(client);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${listener.address().port}`;
  return {
    server: { ...server, name: `${server.name}-proxied`, url },
    /** Resets every connection open now; with `block`, new ones too until restore(). */
    cut({ block = false } = {}) {
      blocked = block;
      const n = sockets.size;
      for (const s of sockets) s.resetAndDestroy();
      return n;
    },
    restore() {
      blocked = false;
    },
    close: () => listener.close(),
  };
}

/** Serves DIR's files at / and passes everything else to natter (NATTER_WEB_DIR). */
function webDirProxy(dir, upstream, listenPort) {
  const types = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
  const server = http.createServer((req, res) => {
    const file = req.url === '/' || req.url.startsWith('/?') ? 'index.html' : req.url.slice(1).split('?')[0];
    const full = path.join(dir, file);
    if (/^[\w.-]+$/.test(file) && fs.existsSync(full)) {
      res.writeHead(200, { 'content-type': types[file.split('.').pop()] || 'application/octet-stream', 'cache-control': 'no-cache' });
      res.end(fs.readFileSync(full));
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(upstream, '127.0.0.1', () => {
      const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n\r\n`);
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  return new Promise((resolve) => server.listen(listenPort, '127.0.0.1', () => resolve(server)));
}

// ---- participants -----------------------------------------------------------------------

/**
 * A participant: its own browser context (storage, devices) and page.
 * @param {import('playwright-core').Browser | import('puppeteer-core').Browser} browser
 *   Chromium (launchBrowser) or Firefox (launchFirefox)
 */
export async function openParticipant(browser, server, { room, name, relay = false, token, query = {}, init }) {
  const { context, page } = await newPage(browser, init);
  const problems = [];
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const consoleLog = fs.createWriteStream(path.join(ARTIFACTS, `${server.name}.${name}.console.log`));
  const started = Date.now();
  page.on('pageerror', (e) => {
    problems.push(`pageerror: ${e.message}`);
    consoleLog.write(`${Date.now() - started} pageerror ${e.stack || e.message}\n`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    consoleLog.write(`${Date.now() - started} ${m.type()} ${m.text()}\n`);
  });
  page.on('close', () => consoleLog.end());
  // A small camera picture keeps six VP8 encoders and decoders per
  // participant affordable on two cores.
  const q = new URLSearchParams({ room, width: '320', height: '240', fps: '15', debug: '1', ...query });
  if (relay) q.set('relay', '1');
  await page.goto(`${server.url}/?${q}${token ? `#token=${token}` : ''}`);
  await page.waitForSelector('[data-testid="join-button"]');
  await page.fill('[data-testid="join-name"]', name);
  return { name, page, context, problems, id: null };
}

/**
 * A fresh browser context with one 1280x720 page; `init` (a function or
 * source) runs in the page before its own scripts. A Firefox page is
 * wrapped by `firefoxPage` so that the helpers here drive both browsers.
 */
async function newPage(browser, init) {
  const viewport = { width: 1280, height: 720 };
  if (browser.newContext) {
    const context = await browser.newContext({ viewport });
    if (init) await context.addInitScript(init);
    return { context, page: await context.newPage() };
  }
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport(viewport);
  if (init) await page.evaluateOnNewDocument(init);
  return { context, page: firefoxPage(page) };
}

/**
 * A puppeteer-core page with the few playwright-core page methods the
 * helpers use whose puppeteer namesakes differ: fill, setInputFiles,
 * waitForFunction (argument order), and locator (a CSS selector,
 * optionally `hasText` and `and`, waited for in a state). Everything
 * else is puppeteer's own.
 */
function firefoxPage(page) {
  const locator = (selectors, hasText) => ({
    and: (other) => locator([...selectors, ...other.selectors], hasText ?? other.hasText),
    selectors,
    hasText,
    /** @param {{state?: 'attached' | 'detached' | 'visible' | 'hidden', timeout?: number}} [o] */
    async waitFor({ state = 'visible', timeout = 30000 } = {}) {
      const probe = ({ selectors, hasText, state }) => {
        const found = [...document.querySelectorAll(selectors[0])].filter(
          (el) => selectors.every((s) => el.matches(s)) && (!hasText || el.textContent.includes(hasText)),
        );
        const visible = found.some((el) => el.checkVisibility());
        return { attached: found.length > 0, detached: found.length === 0, visible, hidden: !visible }[state];
      };
      await page.waitForFunction(probe, { timeout, polling: 100 }, { selectors, hasText, state });
    },
  });
  const extra = {
    fill: (selector, text) => page.locator(selector).fill(text),
    setInputFiles: async (selector, file) => (await page.$(selector)).uploadFile(file),
    waitForFunction: (fn, arg, options = {}) => page.waitForFunction(fn, options ?? {}, arg),
    locator: (selector, { hasText } = {}) => locator([selector], hasText),
  };
  return new Proxy(page, {
    // Puppeteer's methods use private fields: call them on the page itself.
    get: (target, key) => extra[key] ?? (typeof target[key] === 'function' ? target[key].bind(target) : target[key]),
  });
}

/** Clicks Join and waits for the welcome (the self tile gets its id). */
export async function join(p) {
  // Devices are opened before the button is useful.
  await p.page.waitForFunction(() => document.querySelector('[data-testid="join-camera"]').options.length > 0);
  await p.page.click('[data-testid="join-button"]');
  p.id = await p.page.waitForFunction(() => window.natter.id, null, { timeout: 15000 }).then((h) => h.jsonValue());
  await p.page.waitForSelector(`[data-testid="tile"][data-self][data-peer-id="${p.id}"]`);
  return p.id;
}

/**
 * Runs in a page (page.evaluate): what it receives from each remote
 * peer, read from getStats() of the web client's connections, in either
 * kind of room. In a mesh (`via: 'mesh'`) each peer has a connection of
 * its own, whose inbound-rtp is that peer's. In an SFU room (`via:
 * 'sfu'`) one connection to the server carries everyone: each receive
 * slot's receiver (RTCRtpReceiver.getStats: Firefox's inbound-rtp has no
 * `mid`) counts for the peer the server's latest `track` message put on
 * that slot (window.natter.sfu.slots). A slot keeps its SSRC when it
 * changes hands (docs/signaling.md, "SFU rooms"), so its counters add up
 * everyone it ever carried: a peer is counted from where the slot's
 * counters stood when a call of this function first saw that peer on it
 * (remembered in the page, per connection), never from before.
 * Returns {via, byPeer: peer → {video?: {framesDecoded, frameWidth,
 * frameHeight}, audio?: {packets, samples, concealed}, pair, state,
 * signaling}, sent, pair, state, signaling}; `sent` holds the sizes of
 * the page's own camera layers (outbound-rtp), and `pair`, `state` and
 * `signaling` the SFU connection's (per peer in a mesh).
 */
async function receivedByPeer() {
  // An inbound-rtp's counters, by kind.
  const counters = (r) =>
    r.kind === 'video'
      ? { kind: 'video', framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth, frameHeight: r.frameHeight }
      : // What the jitter buffer played out, decoded or concealed.
        { kind: 'audio', packets: r.packetsReceived || 0, samples: r.totalSamplesReceived || 0, concealed: r.concealedSamples || 0 };
  const inbound = (report) => [...report.values()].filter((r) => r.type === 'inbound-rtp').map(counters);
  // Adds (sign 1) or takes away (-1) counters `c` into `into`; a kind is absent until its first inbound-rtp.
  const add = (into, c, sign = 1) => {
    if (c.kind === 'video') {
      const v = (into.video ??= { framesDecoded: 0, frameWidth: undefined, frameHeight: undefined });
      v.framesDecoded += sign * c.framesDecoded;
      if (sign > 0) Object.assign(v, { frameWidth: c.frameWidth, frameHeight: c.frameHeight });
    } else {
      const a = (into.audio ??= { packets: 0, samples: 0, concealed: 0 });
      for (const k of ['packets', 'samples', 'concealed']) a[k] += sign * c[k];
    }
  };
  // Chromium names the selected pair on its transport; Firefox marks the pair itself.
  const selectedPair = (report) => {
    for (const r of report.values()) {
      const pair = r.type === 'transport' ? report.get(r.selectedCandidatePairId) : r.type === 'candidate-pair' && r.selected ? r : null;
      if (!pair) continue;
      const side = (c) => c && { type: c.candidateType, address: c.address, protocol: c.protocol, relayProtocol: c.relayProtocol ?? null, url: c.url ?? null };
      return { local: side(report.get(pair.localCandidateId)), remote: side(report.get(pair.remoteCandidateId)) };
    }
    return null;
  };
  const sfu = window.natter.sfu;
  if (!sfu) {
    const byPeer = {};
    for (const [id, peer] of window.natter.peers) {
      const report = await peer.pc.getStats();
      byPeer[id] = { pair: selectedPair(report), state: peer.pc.connectionState, signaling: peer.pc.signalingState };
      for (const c of inbound(report)) add(byPeer[id], c);
    }
    return { via: 'mesh', byPeer, sent: [], pair: null, state: null, signaling: null };
  }
  const report = await sfu.pc.getStats();
  const common = { pair: selectedPair(report), state: sfu.pc.connectionState, signaling: sfu.pc.signalingState };
  const byPeer = Object.fromEntries([...window.natter.peers.keys()].map((id) => [id, { ...common }]));
  // mid → {peer, base}: whom this function last saw on the slot, and the slot's counters when it first did.
  const seen = (window.__natterSlotsSeen ??= new WeakMap());
  if (!seen.has(sfu.pc)) seen.set(sfu.pc, new Map());
  const slotsSeen = seen.get(sfu.pc);
  for (const t of sfu.pc.getTransceivers()) {
    const slot = sfu.slots.get(t.mid);
    if (!slot) continue;
    const now = inbound(await t.receiver.getStats());
    if (slotsSeen.get(t.mid)?.peer !== slot.peer) slotsSeen.set(t.mid, { peer: slot.peer, base: now });
    if (!slot.peer) continue;
    const entry = (byPeer[slot.peer] ??= { ...common });
    for (const c of now) add(entry, c);
    for (const c of slotsSeen.get(t.mid).base) add(entry, c, -1);
  }
  const sent = [];
  report.forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameWidth) sent.push(`${r.frameWidth}x${r.frameHeight}`);
  });
  return { via: 'sfu', byPeer, sent, ...common };
}

/**
 * What `p`'s page receives through its SFU connection (receivedByPeer):
 * peer → {video: {framesDecoded, frameWidth, frameHeight}, audio:
 * {packets, samples, concealed}}; the sizes its own camera's layers are
 * sent at (outbound-rtp); the selected candidate pair (type, address,
 * protocol, relay protocol and TURN URL of each side); and the
 * connection state. Empty in a mesh.
 */
export async function sfuStats(p) {
  const got = await p.page.evaluate(receivedByPeer);
  if (got.via !== 'sfu') return { byPeer: {}, sent: [], pair: null, state: null };
  const byPeer = Object.fromEntries(Object.entries(got.byPeer).map(([id, { video, audio }]) => [id, { video, audio }]));
  return { byPeer, sent: got.sent, pair: got.pair, state: got.state };
}

/**
 * Per remote peer, in a mesh or an SFU room alike (receivedByPeer):
 * decoded video frames and the last frame's size, received audio
 * packets, audio samples played out (and how many of them were
 * concealment), the candidate types (and the relay protocol of the
 * local one) of the selected pair, the connection's states, and `via`,
 * 'mesh' or 'sfu' (in an SFU room the pair and states are those of the
 * one connection to the server).
 */
export async function mediaStats(page) {
  const got = await page.evaluate(receivedByPeer);
  const out = {};
  for (const [id, s] of Object.entries(got.byPeer)) {
    out[id] = {
      via: got.via,
      framesDecoded: s.video?.framesDecoded ?? 0,
      frameWidth: s.video?.frameWidth,
      frameHeight: s.video?.frameHeight,
      audioPackets: s.audio?.packets ?? 0,
      audioSamples: s.audio?.samples ?? 0,
      concealedSamples: s.audio?.concealed ?? 0,
      local: s.pair?.local?.type ?? null,
      relayProtocol: s.pair?.local?.relayProtocol ?? null,
      remote: s.pair?.remote?.type ?? null,
      connection: s.state,
      signaling: s.signaling,
    };
  }
  return out;
}

/** Waits until `p` decodes video and plays out audio samples from each of `others`. */
export async function waitForMedia(p, others, { timeout = 30000 } = {}) {
  const ids = others.map((o) => o.id);
  let last;
  return until(
    async () => {
      last = await mediaStats(p.page);
      const ok = ids.every((id) => last[id] && last[id].framesDecoded > 0 && last[id].audioSamples > 0);
      return ok ? last : undefined;
    },
    { timeout, interval: 200, what: `${p.name} to decode video and play audio from ${others.map((o) => o.name).join(', ')}`, describe: () => JSON.stringify(last) },
  );
}

/**
 * Waits until `p` has played out `seconds` more of audio from each of
 * `others` (inbound-rtp totalSamplesReceived at 48 kHz), then checks that
 * under half of those samples were concealment: loopback loses nothing,
 * so concealment only covers packets a busy CI machine delivered late (a
 * few percent), while audio received but not decoded is all concealment.
 * Returns each peer's samples and concealed samples over the window.
 */
export async function waitForAudio(p, others, { seconds = 1, timeout = 15000 } = {}) {
  const before = await mediaStats(p.page);
  const grown = (now, id) => ({ samples: now[id].audioSamples - before[id].audioSamples, concealed: now[id].concealedSamples - before[id].concealedSamples });
  let last;
  const now = await until(
    async () => {
      last = await mediaStats(p.page);
      return others.every((o) => last[o.id] && before[o.id] && grown(last, o.id).samples >= seconds * 48000) ? last : undefined;
    },
    { timeout, interval: 200, what: `${p.name} to play ${seconds} s more of audio from ${others.map((o) => o.name).join(', ')}`, describe: () => JSON.stringify({ before, last }) },
  );
  const out = {};
  for (const o of others) {
    out[o.name] = grown(now, o.id);
    if (out[o.name].concealed >= out[o.name].samples / 2) {
      throw new Error(`${p.name} played ${out[o.name].samples} samples of ${o.name}'s audio, ${out[o.name].concealed} of them concealment: not decoded audio`);
    }
  }
  return out;
}

/** Runs an FFmpeg tool (ffmpeg, ffprobe): its stdout and stderr; a missing one fails with how to install it. */
export function ffmpegRun(tool, args) {
  const run = spawnSync(tool, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.error?.code === 'ENOENT') throw new Error(`${tool} is missing: apt-get install ffmpeg (scripts/setup installs it)`);
  if (run.error || run.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${run.error?.message ?? run.stderr}`);
  return { stdout: run.stdout, stderr: run.stderr };
}

/**
 * What ffmpeg says when it decodes every frame of `file` (empty: clean).
 * Frames keep the file's own time base (`-enc_time_base -1`, 1 ms in
 * WebM): a recording of Chromium has the varying frame times of a
 * loaded encoder, and in the 1/frame-rate time base ffmpeg would guess
 * (20 fps, say) two frames 40 ms apart share a tick, which its null
 * muxer reports as non-monotonic although the file's times increase.
 */
export function ffmpegDecodeErrors(file) {
  return ffmpegRun('ffmpeg', ['-v', 'error', '-i', file, '-enc_time_base:v', '-1', '-f', 'null', '-']).stderr;
}

/**
 * SFU rooms: `p`'s page sends a 440 Hz tone instead of its microphone
 * (`on`), or its microphone again. Chromium's fake microphone beeps too
 * quietly to count as speech (RFC 6464 levels around -70 dBov after its
 * audio processing, under the SFU detector's -60); the tone is loud
 * enough to make `p` the active speaker.
 */
export function tone(p, on) {
  return p.page.evaluate(async (on) => {
    const sender = window.natter.sfu.pc.getSenders().find((s) => s.track?.kind === 'audio');
    if (!on) return sender.replaceTrack(window.natter.localStream.getAudioTracks()[0]);
    const context = new AudioContext();
    const oscillator = new OscillatorNode(context, { frequency: 440 });
    const gain = new GainNode(context, { gain: 0.3 });
    const out = new MediaStreamAudioDestinationNode(context);
    oscillator.connect(gain).connect(out);
    oscillator.start();
    await context.resume();
    await sender.replaceTrack(out.stream.getAudioTracks()[0]);
  }, on);
}

/** Sends a chat message from `from` and waits until each of `to` shows it. */
export async function chat(from, to, text) {
  await from.page.fill('[data-testid="chat-input"]', text);
  await from.page.click('[data-testid="chat-send"]');
  for (const p of to) {
    await p.page
      .locator(`[data-testid="chat-message"][data-from="${from.id}"]`, { hasText: text })
      .waitFor({ timeout: 15000 })
      .catch((e) => {
        throw new Error(`${p.name} did not show "${text}" from ${from.name}: ${e.message}`);
      });
  }
}

/** A file of `bytes` random bytes in target/browser, and its SHA-256. */
export function randomFile(name, bytes) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  const data = randomBytes(bytes);
  fs.writeFileSync(file, data);
  return { file, sha256: createHash('sha256').update(data).digest('hex'), size: bytes };
}

/**
 * Reads the bytes of the file `p` received under `name` (the blob behind
 * its download link), hashes them in the page, and returns {sha256, size, state}.
 */
export function receivedFile(p, name) {
  return p.page.evaluate(async (name) => {
    const t = [...window.natter.transfers.values()].find((t) => t.direction === 'receive' && t.name === name);
    const row = document.querySelector(`[data-testid="transfer"][data-transfer-id="${t.id}"]`);
    const link = row.querySelector('a[download]');
    const bytes = await t.blob.arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    return {
      sha256: hex,
      size: bytes.byteLength,
      state: row.dataset.state,
      status: row.querySelector('.transfer-status').textContent,
      link: link ? { download: link.download, blobUrl: link.href.startsWith('blob:') } : null,
    };
  }, name);
}

export function screenshotPath(name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  return path.join(SCREENSHOTS, name);
}

/** Everything a participant's page complained about, for failure messages. */
export function problemsOf(participants) {
  return participants.flatMap((p) => p.problems.map((x) => `${p.name}: ${x}`));
}

/** What Chromium itself logs when a signaling socket cannot connect. */
const SOCKET_FAILED = /^console: WebSocket connection to '[^']*\/ws' failed: /;

/**
 * Takes out of each participant's problems the signaling sockets that
 * could not connect (Chromium logs each one as a console error). A test
 * that keeps the server away on purpose calls this once everyone is
 * back: reconnecting while the server is down is the client's job, and
 * how many attempts fail depends only on how long the outage lasted. Any
 * other problem, and any such failure outside an outage, still counts.
 * @returns {number} how many were taken out
 */
export function forgiveOutage(participants) {
  let n = 0;
  for (const p of participants) {
    const kept = p.problems.filter((x) => !SOCKET_FAILED.test(x));
    n += p.problems.length - kept.length;
    p.problems.splice(0, p.problems.length, ...kept);
  }
  return n;
}

/**
 * `from` sends a random file of `bytes` through the file picker; each of
 * `to` must end up with the same bytes (hashed in its page, compared with
 * node's hash) and show it verified, and the sender must show it sent.
 * `timeout` bounds the wait for each recipient (an SFU room's six pages
 * share two cores with their videos: 27 to 67 s for 5 MiB to five).
 */
export async function sendAndVerifyFile(from, to, name, bytes, { timeout = 60000 } = {}) {
  const file = randomFile(name, bytes);
  await from.page.setInputFiles('[data-testid="file-input"]', file.file);
  for (const p of to) {
    await p.page
      .locator(`[data-testid="transfer"][data-direction="receive"]`, { hasText: name })
      .and(p.page.locator('[data-state="verified"], [data-state="mismatch"], [data-state="failed"]'))
      .waitFor({ timeout });
    const got = await receivedFile(p, name);
    if (got.sha256 !== file.sha256 || got.size !== file.size) {
      throw new Error(`${p.name} received ${got.size} bytes hashing to ${got.sha256}; sent ${file.size} bytes hashing to ${file.sha256}`);
    }
    if (got.state !== 'verified' || !/verified/i.test(got.status)) throw new Error(`${p.name} shows ${got.state}: ${got.status}`);
    if (!got.link || got.link.download !== name || !got.link.blobUrl) throw new Error(`${p.name}: no download link: ${JSON.stringify(got.link)}`);
  }
  await from.page
    .locator(`[data-testid="transfer"][data-direction="send"][data-state="sent"]`, { hasText: name })
    .waitFor({ timeout: 30000 });
  return file;
}

/** Waits until the frames `p` decoded from each of `others` have grown. */
export async function waitForFramesToGrow(p, others, { timeout = 15000 } = {}) {
  const before = await mediaStats(p.page);
  let last;
  return until(
    async () => {
      last = await mediaStats(p.page);
      return others.every((o) => last[o.id] && before[o.id] && last[o.id].framesDecoded > before[o.id].framesDecoded) ? last : undefined;
    },
    { timeout, interval: 200, what: `${p.name}'s decoded frames from ${others.map((o) => o.name).join(', ')} to grow`, describe: () => JSON.stringify(last) },
  );
}
