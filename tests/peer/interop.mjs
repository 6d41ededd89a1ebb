// namespace: veth
// The interop matrix (issue 17), run by scripts/interop: `natter echo`
// answering and offering, as DTLS client and as DTLS server,
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
// The codec cells: where the peer offers, it offers video in only H.264,
// VP9 or AV1 (browsers: setCodecPreferences from their own capabilities;
// aiortc_codec.py; gst_echo.py --video-codec) to natter's echo answering
// as DTLS client, which reflects the frames in that codec; a cell passes
// when the peer decodes the reflection (its getStats inbound codec and
// framesDecoded, or its own counts) and natter's /status shows it
// received video and sent that format back. A codec the peer lacks is
// n/a, as its capabilities (or GStreamer's elements) say.
//
// The veth namespace (scripts/lib/namespace.sh): Firefox and libnice
// gather nothing on `lo`. natter and every peer that takes an address use
// 198.18.0.2.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ROOT, freePort } from '../browser/harness.mjs';
import { callHelpers } from './call.mjs';
import { NATTER_FMTP } from './media.mjs';
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
/** The codec cells: natter's name for each codec in /status, and its role in them. */
const CODECS = { h264: { label: 'H.264', format: 'H264' }, vp9: { label: 'VP9', format: 'Vp9' }, av1: { label: 'AV1', format: 'Av1' } };
const CODEC_ROLE = 'client';
/** The variant natter takes (media.mjs), where an absent VP9 profile-id or AV1 profile means 0 (their RTP payload formats). */
const CODEC_FMTP = { h264: NATTER_FMTP.h264, vp9: ['^(?!.*profile-id=)|profile-id=0'], av1: ['^(?!.*profile=)|profile=0'] };
/** Reflected frames a codec cell's peer decodes. */
const CODEC_FRAMES = 30;
const AIORTC_CODEC = path.join(ROOT, 'tests/peer/aiortc_codec.py');

const pass = { state: 'pass' };
const fail = (why) => ({ state: 'FAIL', why: oneLine(why) });
const na = (why) => ({ state: 'n/a', why });

function oneLine(text) {
  const line = String(text).replace(/\x1b\[[0-9;]*m/g, '').replace(/\s+/g, ' ').trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

/** The last line of a run's log that says what failed (`natter echo: ...`, the Python drivers' sys.exit). */
function reason(run) {
  if (run.signal) return `killed by ${run.signal} (log: ${path.relative(ROOT, run.logPath)})`;
  const lines = run.log.split('\n').filter((l) => l.trim());
  const last = lines.findLast((l) => /^(natter echo|aiortc_echo\.py client|gst_echo\.py --client):|Error|error/.test(l)) ?? lines.at(-1);
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

/** A run of `natter echo --client` (natter offers): its summary checked, or where it failed. */
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

/** natter's side of a codec cell: null when it received video and sent `codec`'s format back, else what it did. */
async function natterCodec(echo, codec) {
  const [connection] = await echo.status();
  const media = connection?.media ?? {};
  const received = (media.receivers ?? []).filter((r) => r.frames_received > 0).map((r) => r.frames_received);
  const sent = (media.senders ?? []).filter((x) => x.frames_sent > 0).map((x) => `${x.format} ${x.frames_sent}`);
  const role = connection?.dtls?.role?.toLowerCase();
  if (role !== CODEC_ROLE) return `natter was DTLS ${role ?? 'nothing'}, not ${CODEC_ROLE}`;
  const format = CODECS[codec].format;
  if (received.length && sent.some((x) => x.startsWith(`${format} `))) return null;
  return `natter received frames ${JSON.stringify(received)}, sent back ${JSON.stringify(sent)}, not ${format}${connection?.errors?.length ? `; errors: ${connection.errors.join('; ')}` : ''}`;
}

/**
 * A codec cell where the peer offers: natter's echo answers as DTLS
 * CODEC_ROLE, `runPeer(echo)` resolves with a cell from the peer's view
 * (or n/a), and natter's /status must agree.
 */
async function peerOffersCodec(peer, codec, runPeer) {
  const echo = await startEcho({ name: `interop-${peer}-${codec}`, addresses: [ADDRESS], args: CODEC_ROLE === 'server' ? ['--dtls-server'] : [] });
  try {
    const cell = await runPeer(echo);
    if (cell.state !== 'pass') return cell;
    const natter = await natterCodec(echo, codec);
    return natter ? fail(natter) : pass;
  } finally {
    await echo.stop();
  }
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

/**
 * In a page of natter's echo: the camera's video offered with only
 * `codec` (those of the browser's RTCRtpReceiver capabilities matching
 * `fmtp`, and RTX); the answer applied; inbound video polled until
 * `frames` frames are decoded. `missing` when the browser cannot send or
 * receive the codec.
 */
async function offerVideoCodec([codec, fmtp, frames]) {
  const matching = (kind) =>
    kind.getCapabilities('video').codecs.filter((c) => c.mimeType.toLowerCase() === `video/${codec}` && fmtp.every((p) => new RegExp(p).test(c.sdpFmtpLine ?? '')));
  const absent = (kind, name) => {
    const all = kind.getCapabilities('video').codecs;
    const same = all.filter((c) => c.mimeType.toLowerCase() === `video/${codec}`);
    if (same.length) return `${name}.getCapabilities('video') has ${codec} only as ${same.map((c) => c.sdpFmtpLine ?? '(no fmtp)').join(', ')}`;
    return `${name}.getCapabilities('video') has no ${codec} (has ${[...new Set(all.map((c) => c.mimeType.replace('video/', '')))].join(', ')})`;
  };
  const wanted = matching(RTCRtpReceiver);
  if (!wanted.length) return { missing: absent(RTCRtpReceiver, 'RTCRtpReceiver') };
  if (!matching(RTCRtpSender).length) return { missing: absent(RTCRtpSender, 'RTCRtpSender') };
  const out = { stage: 'getUserMedia' };
  let pc, stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 } });
    pc = new RTCPeerConnection();
    const transceiver = pc.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendrecv', streams: [stream] });
    transceiver.setCodecPreferences([...wanted, ...RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => c.mimeType.toLowerCase() === 'video/rtx')]);
    out.stage = 'offer';
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    });
    out.stage = 'POST /offer';
    const res = await fetch('/offer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(pc.localDescription) });
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
    out.stage = 'setRemoteDescription';
    await pc.setRemoteDescription(await res.json());
    out.stage = 'decoding';
    const deadline = Date.now() + 20000;
    for (;;) {
      const report = await pc.getStats();
      const v = [...report.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
      out.video = v && { codec: report.get(v.codecId)?.mimeType, framesDecoded: v.framesDecoded ?? 0, size: `${v.frameWidth}x${v.frameHeight}` };
      if ((v?.framesDecoded ?? 0) >= frames && out.video.codec) break;
      if (Date.now() > deadline) throw new Error(`inbound video after 20 s: ${JSON.stringify(out.video ?? 'none')}`);
      await new Promise((resolve) => setTimeout(resolve, 200)); // getStats has no change event: poll
    }
    out.stage = 'done';
  } catch (e) {
    out.error = `${out.stage}: ${e.message}`;
  } finally {
    pc?.close();
    stream?.getTracks().forEach((t) => t.stop());
  }
  return out;
}

/** A codec cell from what a page or driver reported: the decoded codec must be the one offered. */
function decodedCell(codec, got) {
  if (got.missing) return na(got.missing);
  if (got.error) return fail(got.error);
  const mime = `video/${codec}`;
  if (got.video?.codec?.toLowerCase() !== mime) return fail(`decoded ${JSON.stringify(got.video)}, not ${mime}`);
  return pass;
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
    /** The page offers its camera in `codec` only; natter answers and reflects it. */
    natterAnswersCodec: (codec) =>
      peerOffersCodec(name, codec, async (echo) => {
        const opened = await openPage(browser, echo, `interop-${name}-${codec}`);
        try {
          return decodedCell(codec, await opened.page.evaluate(offerVideoCodec, [codec, CODEC_FMTP[codec], CODEC_FRAMES]));
        } finally {
          await opened.context.close().catch(() => {});
        }
      }),
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
    /** aiortc_codec.py offers its video with codec preferences of `codec` only; natter reflects. */
    natterAnswersCodec: (codec) =>
      peerOffersCodec('aiortc', codec, async (echo) => {
        const fmtp = (CODEC_FMTP[codec]).flatMap((p) => ['--fmtp', p]);
        const run = await runOnce({
          name: `interop-aiortc-${codec}.aiortc-client`,
          command: PYTHON,
          argv: [AIORTC_CODEC, `${echo.url}/offer`, '--address', ADDRESS, '--codec', codec, ...fmtp, '--frames', String(CODEC_FRAMES)],
          timeout: CELL_MS,
        });
        if (run.code !== 0 || !run.summary) return fail(reason(run));
        if (run.summary.missing) return na(run.summary.missing);
        // aiortc decodes whatever the answer picked: only `codec` (and RTX) were offered.
        const answered = run.summary.answered?.filter((c) => c.toLowerCase() !== 'rtx');
        if (answered?.[0]?.toLowerCase() !== codec) return fail(`natter answered ${JSON.stringify(run.summary.answered)}`);
        return run.summary.frames >= CODEC_FRAMES ? pass : fail(`decoded: ${JSON.stringify(run.summary)}`);
      }),
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
    /** gst_echo.py --client --video-codec: webrtcbin offers `codec` only (and Opus); natter reflects. */
    natterAnswersCodec: (codec) => {
      if (codec === 'av1') {
        const r = spawnSync('gst-inspect-1.0', ['rtpav1pay'], { encoding: 'utf8' });
        if (r.status !== 0) return Promise.resolve(na('GStreamer has no rtpav1pay (gst-inspect-1.0; it is in gst-plugins-rs, not Debian 12)'));
      }
      return peerOffersCodec('gstreamer', codec, async (echo) => {
        const run = await runOnce({
          name: `interop-gstreamer-${codec}.webrtcbin`,
          command: SYSTEM_PYTHON,
          argv: [GST_ECHO, '--client', `${echo.url}/offer`, '--address', ADDRESS, '--messages', '10', '--max-size', '1200', '--video-codec', codec],
          timeout: CELL_MS,
        });
        if (run.code !== 0 || !run.summary) return fail(reason(run));
        const video = run.summary.received?.video;
        if (video?.encoding !== codec.toUpperCase()) return fail(`webrtcbin decoded ${JSON.stringify(run.summary.received)}, not ${codec}`);
        return video.frames > 0 ? pass : fail(`decoded: ${JSON.stringify(video)}`);
      });
    },
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
  const codecs = Object.fromEntries(Object.keys(CODECS).map((c) => [c, na('no RTP')]));
  return { ...row, client: { data, media }, server: { data, media }, codecs };
}

// ---- the table ---------------------------------------------------------------------------

const show = (cell) => (cell.state === 'pass' ? 'pass' : `${cell.state}: ${cell.why.replaceAll('|', '\\|')}`);

function table(rows) {
  const codecs = Object.values(CODECS).map((c) => ` ${c.label}: peer offers, natter DTLS ${CODEC_ROLE} |`).join('');
  const lines = [
    `| peer | natter | DTLS client: data | DTLS client: media | DTLS server: data | DTLS server: media |${codecs}`,
    `|---|---|---|---|---|---|${'---|'.repeat(Object.keys(CODECS).length)}`,
  ];
  for (const r of rows) {
    const cells = Object.keys(CODECS).map((c) => ` ${show(r.codecs[c])} |`).join('');
    lines.push(`| ${r.peer} | ${r.natter} | ${show(r.client.data)} | ${show(r.client.media)} | ${show(r.server.data)} | ${show(r.server.media)} |${cells}`);
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

/** One codec cell, bounded like the others. */
async function codecCell(what, run) {
  const started = Date.now();
  const result = await within(CELL_MS, what, run()).catch((e) => fail(e.message.split('\n')[0]));
  console.error(`${what}: ${show(result)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return result;
}

async function main() {
  const started = Date.now();
  const rows = [];
  // NATTER_INTEROP_ONLY=codecs: only the codec cells (the rest n/a), to iterate on them quickly.
  const codecsOnly = process.env.NATTER_INTEROP_ONLY === 'codecs';
  const skipped = na('not run (NATTER_INTEROP_ONLY=codecs)');
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
      const row = { peer: peer.name, natter, codecs: {} };
      for (const role of ['client', 'server']) {
        if (codecsOnly) row[role] = { data: skipped, media: skipped };
        else row[role] = missing ? { data: missing, media: missing } : await cell(`${peer.name}, natter ${natter} as DTLS ${role}`, () => peer[method](role));
      }
      for (const codec of Object.keys(CODECS)) {
        if (natter === 'offers') row.codecs[codec] = na('natter\'s client sends its VP8 file');
        else row.codecs[codec] = missing ?? (await codecCell(`${peer.name}, natter answers ${CODECS[codec].label} as DTLS ${CODEC_ROLE}`, () => peer.natterAnswersCodec(codec)));
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
  const failed = rows.flatMap((r) => [r.client.data, r.client.media, r.server.data, r.server.media, ...Object.values(r.codecs)]).filter((c) => c.state === 'FAIL').length;
  console.error(`interop matrix: ${failed} failed cells, ${seconds} s; written to ${path.relative(ROOT, OUT)}/matrix.md`);
  process.exitCode = failed ? 1 : 0;
}

await main();
