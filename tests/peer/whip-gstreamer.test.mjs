// namespace: veth
// Issue 14, acceptance 3: an independent WHIP client, Meetecho's
// simple-whip-client (Debian's `simple-whip-client`, its binary
// `whip-client`: GStreamer's webrtcbin with libnice, an RSA DTLS
// certificate, libsoup for HTTP), publishes GStreamer's test pattern
// (videotestsrc, VP8) and test tone (audiotestsrc, Opus) into a room of
// `natter serve`'s SFU with a Bearer token, trickling its candidates
// with PATCH; a Chromium page plays the room over WHEP and decodes the
// video and receives the audio. SIGINT makes whip-client DELETE its
// session: the room's counts in /metrics return to zero. A wrong token
// gets 401, whip-client gives up, and nothing is created.
//
// libnice gathers nothing on `lo` (shared TESTING.md): this runs in a
// `veth` namespace, the server listening and announcing 198.18.0.2.
//
// Debian 12's whip-client aborts at its first pipeline, whatever the
// server: it links libsoup 2, and webrtcbin's libnice pulls in libsoup 3
// through libgupnp-igd, which libsoup 3 refuses to share a process with.
// The test builds a stand-in libgupnp-igd (tests/peer/gupnp_igd_stub.c,
// no UPnP) and puts it first on whip-client's LD_LIBRARY_PATH; the
// client itself runs unchanged.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ROOT, launchBrowser, startServer, until } from '../browser/harness.mjs';
import { counts, untilPlaying, whipPage } from '../browser/whip-client.mjs';
import { ARTIFACTS } from './harness.mjs';

const ROOM = 'gst';
const WHIP_CLIENT = process.env.NATTER_WHIP_CLIENT || '/usr/bin/whip-client';
/** simple-whip-client's README pipelines: a moving ball in VP8, red noise in Opus. */
const AUDIO = 'audiotestsrc is-live=true wave=red-noise ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100';
const VIDEO =
  'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! queue ! vp8enc deadline=1 ! rtpvp8pay pt=96 ssrc=2 ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=96';

/**
 * Builds tests/peer/gupnp_igd_stub.c into target/peer/gupnp-igd/ (see
 * there why whip-client needs it); returns the directory to put first on
 * LD_LIBRARY_PATH.
 */
function gupnpIgdStub() {
  const dir = path.join(ARTIFACTS, 'gupnp-igd');
  fs.mkdirSync(dir, { recursive: true });
  const source = path.join(ROOT, 'tests/peer/gupnp_igd_stub.c');
  const library = path.join(dir, 'libgupnp-igd-1.0.so.4');
  const built = spawnSync('cc', ['-shared', '-fPIC', '-Wl,-soname,libgupnp-igd-1.0.so.4', '-o', library, source], { encoding: 'utf8' });
  if (built.error || built.status !== 0) {
    throw new Error(`cc could not build ${source} (scripts/setup installs build-essential): ${built.error?.message ?? built.stderr}`);
  }
  return dir;
}

/** whip-client publishing to `url` with `token`; its output goes to target/peer/NAME.log. */
function whipClient(name, url, token) {
  if (!fs.existsSync(WHIP_CLIENT)) {
    throw new Error(`no ${WHIP_CLIENT}: install it with "apt-get install simple-whip-client" (scripts/setup does)`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const env = { ...process.env, LD_LIBRARY_PATH: [gupnpIgdStub(), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  const logPath = path.join(ARTIFACTS, `${name}.log`);
  const log = fs.createWriteStream(logPath);
  const child = spawn(WHIP_CLIENT, ['-u', url, '-t', token, '-A', AUDIO, '-V', VIDEO, '-o', '-l', '5'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      output += chunk;
      log.write(chunk);
    });
  }
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    logPath,
    /** Its exit, or null if it runs `ms` later. */
    exitWithin(ms) {
      let timer;
      const late = new Promise((resolve) => (timer = setTimeout(() => resolve(null), ms)));
      return Promise.race([exited, late]).finally(() => clearTimeout(timer));
    },
    get output() {
      return output;
    },
    signal: (s) => child.exitCode === null && child.signalCode === null && child.kill(s),
  };
}

describe('simple-whip-client publishes, Chromium plays over WHEP', () => {
  let server;
  let browser;
  let client;

  before(async () => {
    const version = spawnSync(WHIP_CLIENT, ['--help'], { encoding: 'utf8' });
    if (version.error) throw new Error(`${WHIP_CLIENT}: ${version.error.message}; install it with "apt-get install simple-whip-client" (scripts/setup does)`);
    browser = await launchBrowser();
    server = await startServer({ name: 'whip-gstreamer', dev: false, host: '198.18.0.2' });
  });

  after(async () => {
    client?.signal('SIGKILL');
    await browser?.close();
    if (server) await server.stopCleanly();
  });

  test('a wrong token gets 401 and creates nothing', async () => {
    const wrong = whipClient('whip-gstreamer.wrong-token', `${server.url}/whip/${ROOM}`, server.token('elsewhere'));
    const exit = await wrong.exitWithin(15000);
    wrong.signal('SIGKILL');
    assert.match(wrong.output, /401/, `whip-client's output names the 401 (log: ${wrong.logPath})`);
    assert.notEqual(exit, null, `whip-client did not give up within 15 s (log: ${wrong.logPath})`);
    assert.deepEqual(await counts(server), { whip: 0, whep: 0, pending: 0, signaling: 0 });
  });

  test('its test pattern and tone play in a WHEP page; SIGINT deletes the session', async (t) => {
    client = whipClient('whip-gstreamer.client', `${server.url}/whip/${ROOM}`, server.token(ROOM, { name: 'gstreamer' }));
    await until(async () => (await counts(server)).whip === 1, {
      timeout: 15000,
      what: 'the WHIP session of whip-client',
      describe: async () => `${JSON.stringify(await counts(server))}; whip-client: ${client.output.slice(-1500)}`,
    });
    const player = await whipPage(browser, server);
    const played = await player.play(`${server.url}/whep/${ROOM}`, server.token(ROOM, { name: 'player' }));
    assert.equal(played.status, 201, played.text);
    const describe = () => `whip-client: ${client.output.slice(-1500)}`;
    const grown = await untilPlaying(player, { timeout: 45000, describe });
    assert.equal(grown.frameWidth, 320, 'whip-client’s 320x240 test pattern');
    t.diagnostic(`WHEP page: ${JSON.stringify(grown)}`);
    // Its own view: connected, candidates trickled with PATCH, no HTTP error.
    for (const step of ['Resource URL: ', 'DTLS connected', 'PeerConnection connected', 'Sending candidates: end-of-candidates']) {
      assert.ok(client.output.includes(step), `whip-client logged "${step}" (log: ${client.logPath})`);
    }
    assert.doesNotMatch(client.output, /\[ERR\]/, `whip-client logged an error (log: ${client.logPath})`);

    // Ctrl-C: whip-client sends DELETE (its README) and exits.
    client.signal('SIGINT');
    const exit = await client.exitWithin(10000);
    assert.notEqual(exit, null, `whip-client did not exit within 10 s of SIGINT (log: ${client.logPath})`);
    await until(async () => (await counts(server)).whip === 0, { timeout: 10000, what: 'the WHIP session to be deleted', describe });
    assert.equal(await player.page.evaluate(() => window.whip.end()), 200);
    await until(async () => JSON.stringify(await counts(server)) === JSON.stringify({ whip: 0, whep: 0, pending: 0, signaling: 0 }), {
      timeout: 10000,
      what: 'every count to return to zero',
      describe: () => counts(server).then(JSON.stringify),
    });
    await player.context.close();
  });
});
