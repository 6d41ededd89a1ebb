// namespace: veth
// The interop matrix (issue 17), run by scripts/interop: natter-io's echo
// example answering and offering, as DTLS client and as DTLS server,
// against Chromium, Firefox ESR, aiortc and GStreamer's webrtcbin, each
// connection checking a data channel echo and media reflected both ways,
// plus the OpenSSL row from `cargo test -p natter --test dtls_openssl`
// (its log named by NATTER_INTEROP_OPENSSL_LOG). Prints the table in
// Markdown on stdout, writes it to target/interop/matrix.md, and exits 1
// when any cell failed. Every cell is `pass`, `FAIL: reason` or `n/a: why`.
//
// Small on purpose, so that the whole matrix runs in a few minutes: 100
// mixed text and binary messages of 1 B to 16 KiB (aiortc_echo.py's own
// mix, to 256 KiB, for aiortc offering), 10 on an unordered channel where
// the offerer opens one, and a few seconds of media: natter offering
// sends 3 s of VP8 and Opus (mediaFiles) that the peer sends back and
// natter decodes; a peer offering sends its camera and microphone (or
// test sources) that natter reflects and the peer decodes. The drivers
// are the peer tests' own (harness.mjs, call.mjs, aiortc_echo.py,
// gst_echo.py); their test files check the same paths at full size.
//
// The veth namespace (scripts/lib/namespace.sh): Firefox and libnice
// gather nothing on `lo`. natter and every peer that takes an address use
// 198.18.0.2.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ROOT, freePort } from '../browser/harness.mjs';
import { callHelpers } from './call.mjs';
import {
  PYTHON,
  launchBrowser,
  launchFirefox,
  mediaFiles,
  mixedSizes,
  openPage,
  runAiortcClient,
  runClient,
  runOnce,
  startAiortc,
  startAnswerer,
  startEcho,
  startServer,
} from './harness.mjs';

const ADDRESS = '198.18.0.2';
const MESSAGES = 100;
const MAX_SIZE = 16384;
const UNORDERED = 10;
/** The bound on one connection's checks, so that a stuck cell fails rather than hangs the matrix. */
const CELL_MS = 60000;
const OUT = path.join(ROOT, 'target/interop');
const GST_ECHO = path.join(ROOT, 'tests/peer/gst_echo.py');
const SYSTEM_PYTHON = '/usr/bin/python3';
const GST_INSTALL =
  'install it with scripts/setup (apt-get install gstreamer1.0-plugins-bad gstreamer1.0-plugins-good gstreamer1.0-plugins-base gstreamer1.0-nice python3-gi gir1.2-gst-plugins-bad-1.0 gir1.2-gst-plugins-base-1.0)';
/** A failure that names media (a check after the data channel's) left the data check passed. */
const MEDIA_FAILURE = /media|video|audio|frame|decod/i;

const pass = { state: 'pass' };
const fail = (why) => ({ state: 'FAIL', why: oneLine(why) });
const na = (why) => ({ state: 'n/a', why });

function oneLine(text) {
  const line = String(text).replace(/\x1b\[[0-9;]*m/g, '').replace(/\s+/g, ' ').trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

/** The last line of a run's log that says what failed (the echo's `echo: ...`, the Python drivers' sys.exit). */
function reason(run) {
  if (run.signal) return `killed by ${run.signal} (log: ${path.relative(ROOT, run.logPath)})`;
  const lines = run.log.split('\n').filter((l) => l.trim());
  const last = lines.findLast((l) => /^(echo|aiortc_echo\.py client|gst_echo\.py --client):|Error|error/.test(l)) ?? lines.at(-1);
  return `${last ?? `exit ${run.code}, no output`} (log: ${path.relative(ROOT, run.logPath)})`;
}

function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Both cells of a connection, or both failed with one reason when the role is not the one the cell names. */
function withRole(cells, natterRole, want) {
  if (natterRole === want) return cells;
  const wrong = fail(`natter was DTLS ${natterRole ?? 'nothing'}, not ${want}`);
  return { data: wrong, media: wrong };
}

/** A run of natter's `echo --client` (natter offers): its summary checked, or where it failed. */
function clientCells(run, role) {
  const s = run.summary;
  if (run.code !== 0 || !s?.ok) {
    const why = reason(run);
    // The client checks the channels before the media.
    return { data: MEDIA_FAILURE.test(why) ? pass : fail(why), media: fail(why) };
  }
  const data =
    s.reliable?.messages === MESSAGES && s.unordered?.messages === UNORDERED
      ? pass
      : fail(`echoes: ${JSON.stringify({ reliable: s.reliable?.messages, unordered: s.unordered?.messages })}`);
  // The client itself checked that at least half of each stream came back.
  const media = `${s.media?.size}` === '320,240' ? pass : fail(`reflected video: ${JSON.stringify(s.media)}`);
  return withRole({ data, media }, s.dtls_role, role);
}

/** The echo's one connection: DTLS role lower-cased and whether it received and sent both kinds of media. */
async function natterStatus(echo) {
  const [connection] = await echo.status();
  const media = connection?.media ?? {};
  const received = (media.receivers ?? []).filter((r) => r.frames_received > 0).length;
  const sent = new Set((media.senders ?? []).filter((x) => x.frames_sent > 0).map((x) => x.format));
  return {
    role: connection?.dtls?.role?.toLowerCase(),
    echoed: Object.values(connection?.channels ?? {}).find((c) => c.label === 'echo')?.messages_echoed ?? 0,
    media: received >= 2 && sent.has('Vp8') && sent.has('Opus') ? null : `natter received ${received} of 2 streams, sent back ${[...sent]}`,
  };
}

/**
 * A peer's client (`runPeer(echo)`, resolving with a runOnce result)
 * offers to natter's echo server, which answers as DTLS `role`;
 * `check(summary)` gives the cells.
 */
async function peerOffersTo(peer, role, runPeer, check) {
  const echo = await startEcho({ name: `interop-${peer}-answers-${role}`, addresses: [ADDRESS], args: role === 'server' ? ['--dtls-server'] : [] });
  try {
    return await peerClientCells(await runPeer(echo), echo, role, check);
  } finally {
    await echo.stop();
  }
}

/** A peer's client run against natter's echo server: `check(summary)` gives the cells. */
async function peerClientCells(run, echo, role, check) {
  const natter = await natterStatus(echo);
  if (run.code !== 0 || !run.summary) {
    const why = reason(run);
    const dataDone = MEDIA_FAILURE.test(why) && natter.echoed >= MESSAGES;
    return { data: dataDone ? pass : fail(why), media: fail(why) };
  }
  const cells = check(run.summary);
  if (natter.media && cells.media.state === 'pass') cells.media = fail(natter.media);
  return withRole(cells, natter.role, role);
}

// ---- the peers ------------------------------------------------------------------------

const SIZES = mixedSizes().filter((n) => n <= MAX_SIZE).slice(0, MESSAGES);
const CLIENT_ARGS = ['--messages', MESSAGES, '--max-size', MAX_SIZE, '--unordered-messages', UNORDERED, '--timeout-ms', 20000].map(String);

/**
 * natter's `echo --client` offers 'echo', 'lossy', VP8 and Opus to the
 * echo server at `server` (a peer's), which answers active (natter: DTLS
 * server) unless told `?setup=passive` (natter: DTLS client).
 */
async function natterOffersTo(peer, server, files, role) {
  const run = await runClient({
    name: `interop-${peer}-offers-${role}`,
    url: `${server}/offer${role === 'client' ? '?setup=passive' : ''}`,
    addresses: [ADDRESS],
    args: [...CLIENT_ARGS, '--video', files.video, '--audio', files.audio],
  });
  return clientCells(run, role);
}

/**
 * In the browser echo server's page: every peer connection plays the
 * audio it receives. Chromium decodes a remote audio track only while
 * something plays it (call.mjs), so without a sink the audio it
 * reflects to natter stays silent and sends nothing.
 */
function playRemoteAudio() {
  const Base = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Base {
    constructor(...args) {
      super(...args);
      this.addEventListener('track', (e) => {
        if (e.track.kind !== 'audio') return;
        const audio = document.body.appendChild(document.createElement('audio'));
        audio.srcObject = new MediaStream([e.track]);
        audio.play().catch((x) => console.log(`remote audio does not play: ${x.message}`));
      });
    }
  };
}

/** A browser (Chromium or Firefox): `open()` launches it; natter answers its page, and offers to its echo server. */
function browserPeer(name, launch) {
  let browser, answerer, files;
  return {
    name,
    async open() {
      browser = await launch();
      this.name = `${name} ${(await browser.version()).replace(/^[^0-9]*/, '').split('.')[0]}`;
      answerer = await startAnswerer({ browser, name: `interop-${name}-answerer` });
      await answerer.page.evaluate(playRemoteAudio);
      files = mediaFiles(`interop-${name}`);
    },
    async close() {
      await answerer?.stop();
      await browser?.close();
    },
    /** The page offers its camera, microphone and 'echo'; natter answers and reflects. */
    async natterAnswers(role) {
      const label = `interop-${name}-answers-${role}`;
      const echo = await startEcho({ name: label, addresses: [ADDRESS], args: role === 'server' ? ['--dtls-server'] : [] });
      let context;
      try {
        const opened = await openPage(browser, echo, label);
        context = opened.context;
        const page = opened.page;
        await page.evaluate(callHelpers);
        try {
          await page.evaluate(() => window.call.start({ audio: true }));
        } catch (e) {
          const why = `${e.message.split('\n')[0]} (echo log: ${path.relative(ROOT, echo.logPath)})`;
          return { data: fail(why), media: fail(why) };
        }
        const data = await page
          .evaluate(({ sizes }) => window.t.burst('echo', sizes, { seed: 11, timeout: 20000 }), { sizes: SIZES })
          .then((r) => (r.count === MESSAGES && r.mismatchCount === 0 ? pass : fail(`${r.count} echoes, ${r.mismatchCount} not the message sent`)))
          .catch((e) => fail(e.message.split('\n')[0]));
        // Decoded frames and samples keep growing: what natter reflects decodes.
        const media = await page
          .evaluate(async () => {
            await window.call.moreVideo('0', 30);
            await window.call.moreAudio('1');
          })
          .then(() => pass)
          .catch((e) => fail(e.message.split('\n')[0]));
        const natter = await natterStatus(echo);
        if (natter.media && media.state === 'pass') Object.assign(media, fail(natter.media));
        return withRole({ data, media }, natter.role, role);
      } finally {
        await context?.close().catch(() => {});
        await echo.stop();
      }
    },
    natterOffers: (role) => natterOffersTo(name, answerer.url, files, role),
  };
}

function aiortcPeer() {
  let server, files;
  return {
    name: 'aiortc',
    async open() {
      const version = spawnSync(PYTHON, ['-c', 'import aiortc; print(aiortc.__version__)'], { encoding: 'utf8' }).stdout.trim();
      this.name = `aiortc ${version.split('.').slice(0, 2).join('.')}`;
      server = await startAiortc({ name: 'interop-aiortc', address: ADDRESS });
      files = mediaFiles('interop-aiortc');
    },
    async close() {
      await server?.stop();
    },
    /** aiortc_echo.py's client offers its channels, 640x480 video and audio; natter reflects. */
    natterAnswers: (role) =>
      peerOffersTo(
        'aiortc',
        role,
        (echo) =>
          runAiortcClient({
            name: `interop-aiortc-answers-${role}`,
            url: `${echo.url}/offer`,
            address: ADDRESS,
            args: ['--messages', String(MESSAGES), '--unordered-messages', String(UNORDERED), '--media'],
          }),
        (s) => ({
          data: s.reliable?.messages === MESSAGES && s.unordered?.messages === UNORDERED ? pass : fail(`echoes: ${JSON.stringify(s.reliable)}`),
          media: s.media?.video_frames > 0 && s.media?.audio_frames > 0 ? pass : fail(`decoded: ${JSON.stringify(s.media)}`),
        }),
      ),
    natterOffers: (role) => natterOffersTo('aiortc', server.url, files, role),
  };
}

/** Fails with how to install GStreamer when Debian's python3 has no webrtcbin bindings. */
function requireGstreamer() {
  const check = 'import gi; gi.require_version("GstWebRTC", "1.0"); gi.require_version("GstSdp", "1.0")';
  if (!fs.existsSync(SYSTEM_PYTHON)) throw new Error(`no ${SYSTEM_PYTHON} to run gst_echo.py: ${GST_INSTALL}`);
  const r = spawnSync(SYSTEM_PYTHON, ['-c', check], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${SYSTEM_PYTHON} has no GStreamer WebRTC bindings: ${GST_INSTALL}`);
}

function gstreamerPeer() {
  let server, files;
  return {
    name: 'GStreamer webrtcbin',
    async open() {
      requireGstreamer();
      const version = spawnSync('gst-launch-1.0', ['--version'], { encoding: 'utf8' }).stdout?.match(/GStreamer (\d+\.\d+)/)?.[1];
      this.name = `GStreamer webrtcbin ${version ?? ''} (RSA certificate)`.replace('  ', ' ');
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      server = await startServer({
        what: 'gst_echo.py',
        name: 'interop-gstreamer.webrtcbin',
        command: SYSTEM_PYTHON,
        argv: [GST_ECHO, '--listen', `127.0.0.1:${port}`, '--address', ADDRESS],
        url,
      });
      files = mediaFiles('interop-gstreamer');
    },
    async close() {
      await server?.stop();
    },
    /** gst_echo.py's client offers 'echo', VP8 and Opus; natter reflects them and webrtcbin decodes. */
    natterAnswers: (role) =>
      peerOffersTo(
        'gstreamer',
        role,
        (echo) =>
          runOnce({
            name: `interop-gstreamer-answers-${role}.webrtcbin`,
            command: SYSTEM_PYTHON,
            argv: [GST_ECHO, '--client', `${echo.url}/offer`, '--address', ADDRESS, '--messages', String(MESSAGES), '--max-size', String(MAX_SIZE)],
            timeout: CELL_MS,
          }),
        (s) => ({
          data: s.messages === MESSAGES ? pass : fail(`echoes: ${s.messages}`),
          media: s.received?.video?.frames > 0 && s.received?.audio?.frames > 0 ? pass : fail(`decoded: ${JSON.stringify(s.received)}`),
        }),
      ),
    natterOffers: (role) => natterOffersTo('gstreamer', server.url, files, role),
  };
}

// ---- OpenSSL (cargo test) ---------------------------------------------------------------

/** The OpenSSL row from dtls_openssl's log: DTLS only, so no offer/answer and no media. */
function opensslRow() {
  const log = process.env.NATTER_INTEROP_OPENSSL_LOG;
  const version = spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout?.split(' ')[1];
  const row = {
    peer: `OpenSSL ${version ?? ''} s_server/s_client (RSA-2048, RSA-4096, ECDSA)`.replace('  ', ' '),
    natter: 'n/a: DTLS only, no SDP or ICE (`dtls_openssl`)',
  };
  let data;
  if (!log || !fs.existsSync(log)) {
    data = fail('no log of `cargo test --release -p natter --test dtls_openssl`: run scripts/interop, which runs it');
  } else {
    const text = fs.readFileSync(log, 'utf8');
    const failed = [...text.matchAll(/^test (\S+) \.\.\. FAILED/gm)].map((m) => m[1]);
    const passed = [...text.matchAll(/^test (\S+) \.\.\. ok/gm)].length;
    if (failed.length) data = fail(`${failed.join(', ')} (log: ${path.relative(ROOT, log)})`);
    else if (/^test result: ok\./m.test(text) && passed > 0) data = pass;
    else data = fail(`no test result in ${path.relative(ROOT, log)}: ${oneLine(text.trim().split('\n').at(-1) ?? 'empty')}`);
  }
  // Each test runs both roles; application data both ways and close_notify.
  const media = na('no RTP; the SRTP keys are checked equal to OpenSSL\'s exporter');
  return { ...row, client: { data, media }, server: { data, media } };
}

// ---- the table ---------------------------------------------------------------------------

const show = (cell) => (cell.state === 'pass' ? 'pass' : `${cell.state}: ${cell.why.replaceAll('|', '\\|')}`);

function table(rows) {
  const lines = [
    '| peer | natter | DTLS client: data | DTLS client: media | DTLS server: data | DTLS server: media |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.peer} | ${r.natter} | ${show(r.client.data)} | ${show(r.client.media)} | ${show(r.server.data)} | ${show(r.server.media)} |`);
  }
  return lines.join('\n');
}

async function cell(what, run) {
  const started = Date.now();
  const result = await within(CELL_MS, what, run()).catch((e) => {
    const why = fail(e.message.split('\n')[0]);
    return { data: why, media: why };
  });
  console.error(`${what}: data ${show(result.data)}, media ${show(result.media)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return result;
}

async function main() {
  const started = Date.now();
  const rows = [];
  const peers = [browserPeer('Chromium', launchBrowser), browserPeer('Firefox ESR', launchFirefox), aiortcPeer(), gstreamerPeer()];
  for (const peer of peers) {
    let missing = null;
    try {
      await peer.open();
    } catch (e) {
      missing = fail(e.message.split('\n')[0]);
    }
    for (const [natter, method] of [
      ['answers', 'natterAnswers'],
      ['offers', 'natterOffers'],
    ]) {
      const row = { peer: peer.name, natter };
      for (const role of ['client', 'server']) {
        row[role] = missing ? { data: missing, media: missing } : await cell(`${peer.name}, natter ${natter} as DTLS ${role}`, () => peer[method](role));
      }
      rows.push(row);
    }
    await peer.close().catch((e) => console.error(`closing ${peer.name}: ${e.message}`));
  }
  rows.push(opensslRow());
  const seconds = Math.round((Date.now() - started) / 1000);
  const markdown = `${table(rows)}\n`;
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'matrix.md'), markdown);
  process.stdout.write(markdown);
  const failed = rows.flatMap((r) => [r.client.data, r.client.media, r.server.data, r.server.media]).filter((c) => c.state === 'FAIL').length;
  console.error(`interop matrix: ${failed} failed cells, ${seconds} s; written to ${path.relative(ROOT, OUT)}/matrix.md`);
  process.exitCode = failed ? 1 : 0;
}

await main();
