// namespace: lo
// Issue 14, acceptance 4: a recorded 6-person call of `natter serve`
// (SFU rooms, docs/recording.md). Six Chromium pages (fake camera at
// 640x360, so Chromium sends simulcast layers q and h, and fake
// microphone) join one room with tokens. (`natter join` bots cannot be
// among them: natter join joins mesh rooms only.) The API refuses to
// record without a token of the room or the secret; Alice's Record
// button (her join token) starts the recording and every page shows
// that it runs. Bob plays a tone, so the SFU names him the active
// speaker. The API stops the recording with the server secret and
// answers with the manifest; every page shows it stopped. Then each of
// the six files holds one VP8 and one Opus stream that ffprobe reads,
// with a duration within 1 s of the recording's (the manifest's start
// to end), and ffmpeg decodes it without a complaint; the manifest lists
// all six and Bob's speech.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, ffmpegDecodeErrors, ffmpegRun, join, launchBrowser, openParticipant, problemsOf, startServer, tone, until } from './harness.mjs';

const ROOM = 'recorded';
const NAMES = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank'];
/** How long the test lets the recording run once everyone is in it. */
const RECORD_MS = 6000;

/** ffprobe's streams and format duration. */
function probe(file) {
  const info = JSON.parse(
    ffmpegRun('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width,height:format=duration,format_name', '-of', 'json', file]).stdout,
  );
  return {
    format: info.format.format_name,
    duration: Number(info.format.duration),
    streams: info.streams.map((s) => ({ type: s.codec_type, codec: s.codec_name, width: s.width, height: s.height })),
  };
}

/** The REST API: method, path, bearer token → {status, body}. */
async function api(server, method, route, bearer) {
  const headers = bearer ? { Authorization: `Bearer ${bearer}` } : {};
  const response = await fetch(`${server.url}${route}`, { method, headers });
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** Peers whose video `p`'s page decodes through the SFU. */
function decodedPeers(p) {
  return p.page.evaluate(async () => {
    const sfu = window.natter.sfu;
    if (!sfu) return [];
    const peers = [];
    (await sfu.pc.getStats()).forEach((r) => {
      const peer = r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 0 && sfu.slots.get(r.mid)?.peer;
      if (peer) peers.push(peer);
    });
    return peers;
  });
}

describe('a 6-person call of natter serve (SFU), recorded', () => {
  let server;
  let browser;
  const dir = path.join(ARTIFACTS, 'serve-record');

  before(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    browser = await launchBrowser();
    server = await startServer({ name: 'serve-record', dev: false, maxParticipants: 6, args: ['--record-dir', dir] });
  });

  after(async () => {
    await browser?.close();
    if (server) await server.stopCleanly();
  });

  test('every participant is recorded to a WebM file that plays, with a manifest of who spoke when', async () => {
    const camera = { width: '640', height: '360', fps: '15' };
    const pages = [];
    for (const name of NAMES) {
      const p = await openParticipant(browser, server, { room: ROOM, name, token: server.token(ROOM, { name }), query: camera });
      await join(p);
      pages.push(p);
    }
    const [alice, bob] = pages;
    const everyone = pages.map((p) => p.id);
    // Everyone publishes: Alice's page decodes the video of the five others.
    let seen = [];
    await until(
      async () => {
        seen = await decodedPeers(alice);
        return everyone.filter((id) => id !== alice.id).every((id) => seen.includes(id));
      },
      { timeout: 30000, what: "Alice's page decoding the video of the five others", describe: () => JSON.stringify(seen) },
    );

    // Recording is refused without a token of the room or the secret.
    assert.equal((await api(server, 'POST', `/api/rooms/${ROOM}/recording`)).status, 401);
    assert.equal((await api(server, 'POST', `/api/rooms/${ROOM}/recording`, server.token('other'))).status, 401);
    assert.equal((await api(server, 'GET', `/api/rooms/${ROOM}/recording`, server.secret)).status, 404);

    // Alice's Record button starts it; every page is told.
    await alice.page.click('[data-testid="record"]');
    const started = Date.now();
    for (const p of pages) {
      await p.page.waitForFunction(() => window.natter.recording === true, null, { timeout: 10000 });
      await p.page.locator('[data-testid="recording-badge"]').waitFor({ state: 'visible', timeout: 5000 });
    }
    const status = await api(server, 'GET', `/api/rooms/${ROOM}/recording`, server.secret);
    assert.equal(status.status, 200, JSON.stringify(status.body));
    assert.equal(path.dirname(status.body.dir), dir);
    assert.equal((await api(server, 'POST', `/api/rooms/${ROOM}/recording`, server.secret)).status, 409, 'already recorded');

    // Bob speaks: the SFU names him the active speaker.
    await tone(bob, true);
    await alice.page.waitForFunction((id) => window.natter.sfu.speaker === id, bob.id, { timeout: 15000 });
    // The call goes on for RECORD_MS in all: its length, not a wait for something.
    const wait = RECORD_MS - (Date.now() - started);
    if (wait > 0) await alice.page.waitForTimeout(wait);

    // The secret stops it; the answer is the finished manifest.
    const stopped = await api(server, 'DELETE', `/api/rooms/${ROOM}/recording`, server.secret);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    for (const p of pages) await p.page.waitForFunction(() => window.natter.recording === false, null, { timeout: 10000 });
    const manifest = stopped.body.manifest;
    assert.deepEqual(manifest, JSON.parse(fs.readFileSync(path.join(status.body.dir, 'manifest.json'), 'utf8')));
    const recorded = (manifest.ended - manifest.started) / 1000;
    console.log(`# recorded ${recorded.toFixed(2)} s (the test saw ${seconds.toFixed(2)} s), lost frames ${manifest.lost_frames}`);
    assert.ok(Math.abs(recorded - seconds) <= 1, `the manifest says ${recorded} s, the test saw ${seconds} s`);

    const entries = Object.fromEntries(manifest.participants.map((e) => [e.id, e]));
    assert.deepEqual(Object.keys(entries).sort(), [...everyone].sort(), JSON.stringify(manifest.participants));
    const names = Object.fromEntries(pages.map((p) => [p.id, p.name]));
    for (const id of everyone) {
      const e = entries[id];
      assert.equal(e.name, names[id]);
      assert.equal(e.error, null, `${e.name}: ${e.error}`);
      assert.deepEqual(e.tracks.map((t) => `${t.kind}/${t.codec}`), ['video/vp8', 'audio/opus'], `${e.name}: ${JSON.stringify(e.tracks)}`);
      assert.ok(e.tracks.every((t) => (t.frames ?? t.packets) > 0), `${e.name}: ${JSON.stringify(e.tracks)}`);
      const file = path.join(status.body.dir, e.file);
      const got = probe(file);
      console.log(`# ${e.name}: ${JSON.stringify(got)}`);
      assert.equal(got.format, 'matroska,webm');
      assert.deepEqual(got.streams.map((s) => `${s.type}/${s.codec}`), ['video/vp8', 'audio/opus'], `${e.name}: ${JSON.stringify(got.streams)}`);
      assert.ok(Math.abs(got.duration - recorded) <= 1, `${e.name}: ffprobe says ${got.duration} s, the recording ran ${recorded} s`);
      // ffmpeg decodes every frame without a complaint.
      assert.equal(ffmpegDecodeErrors(file), '', `${e.name}'s file`);
    }

    // Who spoke when: Bob, for a while, within the recording.
    const bobSpoke = manifest.speech.filter((s) => s.id === bob.id);
    assert.ok(bobSpoke.length > 0, JSON.stringify(manifest.speech));
    for (const s of manifest.speech) {
      assert.equal(s.name, names[s.id]);
      assert.ok(s.start_ms < s.end_ms && s.end_ms <= manifest.ended - manifest.started + 1, JSON.stringify(s));
    }
    assert.deepEqual(problemsOf(pages), []);
  });
});
