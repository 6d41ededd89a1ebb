// Helpers of the natter-io interop tests: the echo example
// (crates/natter-io/examples/echo.rs) on a free port, headless Chromium
// (the flags, waits and ports of tests/browser/harness.mjs, whose
// playwright-core install this suite reuses), and the page-side code that
// drives an RTCPeerConnection against it.
//
// Environment:
//   NATTER_ECHO_BIN  the echo example [target/release/examples/echo]
//   CHROMIUM         the browser [/usr/bin/chromium]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { CHROMIUM, CHROMIUM_ARGS, ROOT, freePort, until } from '../browser/harness.mjs';

export { until };

export const ECHO_BIN = path.resolve(ROOT, process.env.NATTER_ECHO_BIN || 'target/release/examples/echo');
export const ARTIFACTS = path.join(ROOT, 'target/peer');

/** The namespace's UDP RcvbufErrors (RFC 4113 udpInErrors' cause): datagrams a full socket buffer dropped. */
export function udpReceiveBufferErrors() {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  return Number(values[names.indexOf('RcvbufErrors')]);
}

/** Fails with instructions when Chromium, playwright-core or the echo example is missing. */
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
  if (!fs.existsSync(ECHO_BIN)) {
    throw new Error(`no echo example at ${ECHO_BIN}: run "cargo build --release -p natter-io --examples" (scripts/test-peer does)`);
  }
  return playwright.chromium;
}

/**
 * Headless Chromium. With `mdns: true`, the flags that make Chromium
 * hide its addresses behind `.local` names as it does for any page
 * without camera permission: no fake media UI (which grants that
 * permission) and WebRtcHideLocalIpsWithMdns left on.
 */
export async function launchBrowser({ mdns = false } = {}) {
  const chromium = loadChromium();
  const args = mdns
    ? CHROMIUM_ARGS.filter((a) => !a.startsWith('--use-fake-ui') && !a.includes('WebRtcHideLocalIpsWithMdns'))
    : CHROMIUM_ARGS;
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/** Starts the echo example and waits for /healthz. */
export async function startEcho({ name, addresses = ['127.0.0.1'], args = [] }) {
  const port = await freePort();
  const argv = ['--listen', `127.0.0.1:${port}`, ...addresses.flatMap((a) => ['--address', a]), ...args];
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${name}.echo.log`);
  const log = fs.createWriteStream(logPath);
  const child = spawn(ECHO_BIN, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info,natter_io=debug', NO_COLOR: '1' },
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  let exited = false;
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve({ code, signal }); }));
  const url = `http://127.0.0.1:${port}`;
  await until(
    async () => {
      if (exited) throw new Error(`the echo example exited early; see ${logPath}`);
      return (await fetch(`${url}/healthz`)).ok;
    },
    { timeout: 15000, interval: 50, what: `the echo example on ${url}/healthz (log: ${logPath})` },
  );
  return {
    url,
    logPath,
    /** GET /status: what natter saw of every connection. */
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

/** A page of the echo server, with its console kept in target/peer and the page helpers installed. */
export async function openPage(browser, echo, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const consoleLog = fs.createWriteStream(path.join(ARTIFACTS, `${name}.console.log`));
  page.on('pageerror', (e) => {
    problems.push(`pageerror: ${e.message}`);
    consoleLog.write(`pageerror ${e.stack || e.message}\n`);
  });
  page.on('console', (m) => consoleLog.write(`${m.type()} ${m.text()}\n`));
  context.on('close', () => consoleLog.end());
  await page.goto(echo.url);
  await page.evaluate(`(${pageHelpers.toString()})()`);
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
     * an ordered channel) same position. Returns the mismatches.
     */
    async burst(label, sizes, { seed = 1, ordered = true, timeout = 120000, partial = false } = {}) {
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
        dc.send(data);
        bytesSent += bytes.length;
      }
      const waited = within(timeout, `${sizes.length} echoes on '${label}'`, all, () => `(got ${received.length}, channel ${dc.readyState})`);
      if (partial) {
        // What came back in time is the result.
        await waited.catch(() => {});
        dc.removeEventListener('message', onMessage);
        return { count: received.length, bytes: bytesSent };
      }
      await waited;
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
