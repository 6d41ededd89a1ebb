// Issue 14, acceptance 1: `natter join --video X.ivf --audio Y.ogg
// --record DIR` in a room with two Chromium pages (fake camera and
// microphone). Both pages decode the CLI's looped VP8 and play its looped
// Opus; the CLI records each page's camera and microphone to a WebM file
// of its own, starting on a keyframe (it asks with PLI). Alice leaving
// finishes her file at once; the CLI leaving (/quit) finishes Bob's and
// the manifest. ffprobe finds a VP8 and an Opus stream in each file, a
// keyframe first, and a duration within 1 s of the time the test saw the
// recording run; ffmpeg decodes both files without an error.
//
// The same in an SFU room (issue 13: every room runs through the SFU):
// natter join sees `welcome.sfu` and makes one connection, to the peer
// id `sfu`. Its VP8 (one layer) and Opus go up once and the server
// forwards them to both pages, which decode them on the slots its
// `track` messages name; it receives each page's camera (the simulcast
// layer the server chose) and microphone on receive slots of its own
// and records each to the file of the participant those `track`
// messages name. Chat goes both ways over signaling, and files go from
// the CLI to both pages and from a page to the CLI over the server's
// data channel relay, byte-exact.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, chat, ffmpegDecodeErrors, ffmpegRun, join, launchBrowser, mediaStats, openParticipant, problemsOf, randomFile, receivedFile, startNatter, startServer, until, waitForAudio } from './harness.mjs';

const ROOM = 'record';
const SFU_ROOM = 'record-sfu';

function ffmpegTool(tool, args) {
  return ffmpegRun(tool, args).stdout;
}

/** A 2 s 320x240 VP8 IVF (a keyframe a second) and 2 s of a 440 Hz tone in Ogg Opus, in target/browser. */
function media() {
  const ivf = path.join(ARTIFACTS, 'cli-record.ivf');
  const ogg = path.join(ARTIFACTS, 'cli-record.ogg');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  ffmpegTool('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-t', '2', '-c:v', 'libvpx', '-g', '30', '-b:v', '300k', ivf]);
  ffmpegTool('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '2', '-c:a', 'libopus', '-b:a', '48k', ogg]);
  return { ivf, ogg };
}

/** ffprobe's streams (codec, size, frames read), format duration and whether the first video frame is a keyframe. */
function probe(file) {
  const info = JSON.parse(
    ffmpegTool('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,codec_name,width,height,nb_read_frames:format=duration,format_name', '-of', 'json', file]),
  );
  const first = ffmpegTool('ffprobe', ['-v', 'error', '-select_streams', 'v', '-read_intervals', '%+#1', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', file]).trim();
  return {
    format: info.format.format_name,
    duration: Number(info.format.duration),
    streams: info.streams.map((s) => ({ type: s.codec_type, codec: s.codec_name, width: s.width, height: s.height, frames: Number(s.nb_read_frames) })),
    firstKeyframe: first.split('\n')[0] === '1',
  };
}

/**
 * The checks of `p`'s recording `file`: WebM with VP8 (of `size`, if
 * given) and Opus, a keyframe first, `seconds` long within 1 s, and
 * ffmpeg decodes every frame without a complaint.
 */
function assertRecording(p, file, seconds, size) {
  const got = probe(file);
  console.log(`${p.name}: ${JSON.stringify(got)}, recorded for ${seconds.toFixed(2)} s by the test's clock`);
  assert.equal(got.format, 'matroska,webm');
  const video = got.streams.find((s) => s.type === 'video');
  const audio = got.streams.find((s) => s.type === 'audio');
  assert.equal(video?.codec, 'vp8');
  if (size) assert.deepEqual({ width: video.width, height: video.height }, size);
  else assert.ok(video.width > 0 && video.height > 0, JSON.stringify(video));
  assert.equal(audio?.codec, 'opus');
  assert.ok(video.frames > 0 && audio.frames > 0, JSON.stringify(got.streams));
  assert.ok(got.firstKeyframe, `${p.name}'s file starts on a keyframe`);
  assert.ok(Math.abs(got.duration - seconds) <= 1, `${p.name}: ffprobe says ${got.duration} s, the test saw ${seconds.toFixed(2)} s`);
  assert.equal(ffmpegDecodeErrors(file), '');
}

/** The checks of the manifest in `dir` for `people`, as `cli` reported their files; its entries by id. */
function assertManifest(dir, people, cli) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  assert.ok(manifest.ended >= manifest.started);
  const entries = Object.fromEntries(manifest.participants.map((e) => [e.id, e]));
  for (const p of people) {
    const e = entries[p.id];
    assert.ok(e, `${p.name} in the manifest: ${JSON.stringify(manifest)}`);
    assert.equal(e.name, p.name);
    assert.equal(e.file, path.basename(cli.events.find((n) => n.event === 'recorded' && n.id === p.id).file));
    assert.ok(e.ended > e.started);
    assert.deepEqual(e.tracks.map((t) => `${t.kind}/${t.codec}`), ['video/vp8', 'audio/opus']);
    assert.ok(e.tracks.every((t) => (t.frames ?? t.packets) > 0), JSON.stringify(e.tracks));
  }
  return entries;
}

/**
 * What `p`'s page receives from participant `id` on its one connection
 * to the SFU (the slots the server's `track` messages gave `id`):
 * decoded frames and their size, audio packets, and samples played out
 * and how many of them were concealment.
 */
function fromPeer(p, id) {
  return p.page.evaluate(async (id) => {
    const sfu = window.natter.sfu;
    const s = { framesDecoded: 0, audioPackets: 0, audioSamples: 0, concealedSamples: 0 };
    if (!sfu) return s;
    (await sfu.pc.getStats()).forEach((r) => {
      if (r.type !== 'inbound-rtp' || sfu.slots.get(r.mid)?.peer !== id) return;
      if (r.kind === 'video') Object.assign(s, { framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth, frameHeight: r.frameHeight });
      else Object.assign(s, { audioPackets: r.packetsReceived || 0, audioSamples: r.totalSamplesReceived || 0, concealedSamples: r.concealedSamples || 0 });
    });
    return s;
  }, id);
}

/**
 * A server (`name`, with `options`) and a browser for the tests of one
 * describe block, and a `dir` for the recording; stopped after them,
 * with the CLI the test puts in `ctx.cli`.
 */
function recordingRoom(name, options = {}) {
  const ctx = { dir: path.join(ARTIFACTS, name) };
  before(async () => {
    fs.rmSync(ctx.dir, { recursive: true, force: true });
    ctx.browser = await launchBrowser();
    ctx.server = await startServer({ name, ...options });
  });
  after(async () => {
    ctx.cli?.kill();
    await ctx.browser?.close();
    if (ctx.server) await ctx.server.stopCleanly();
  });
  return ctx;
}

/**
 * Alice and Bob join `room`, then natter join publishing the test's
 * media and recording to `ctx.dir`; waits until it records both pages.
 * Each page's file starts once its first keyframe came; the test's
 * clock starts there too (`started`, by id).
 */
async function startRecording(ctx, room) {
  const { ivf, ogg } = media();
  const alice = await openParticipant(ctx.browser, ctx.server, { room, name: 'Alice' });
  await join(alice);
  const bob = await openParticipant(ctx.browser, ctx.server, { room, name: 'Bob' });
  await join(bob);
  const cli = startNatter(`${ctx.server.name}.cli`, ['join', ctx.server.url, '--room', room, '--json', '--name', 'Recorder', '--video', ivf, '--audio', ogg, '--record', ctx.dir]);
  ctx.cli = cli;
  const joined = await cli.waitFor((e) => e.event === 'joined', 'joined');
  const bot = { id: joined.id, name: 'Recorder' };
  const started = {};
  for (const p of [alice, bob]) {
    const recording = await cli.waitFor((e) => e.event === 'recording' && e.id === p.id, `recording ${p.name}`);
    started[p.id] = Date.now();
    assert.equal(recording.video, 'vp8');
    assert.equal(path.dirname(recording.file), ctx.dir);
  }
  return { alice, bob, cli, bot, started };
}

/**
 * Alice leaves: her file is finished at once, while Bob's goes on; then
 * the CLI leaves (/quit), which finishes Bob's file and the manifest.
 * Each one's `recorded` event and when the test saw its recording end.
 */
async function finishRecording({ alice, bob, cli }) {
  await alice.page.click('[data-testid="leave"]');
  const aliceEnd = Date.now();
  const aliceDone = await cli.waitFor((e) => e.event === 'recorded' && e.id === alice.id, 'Alice recorded', 10000);
  assert.equal(aliceDone.error, null);
  assert.ok(!cli.events.some((e) => e.event === 'recorded' && e.id === bob.id), 'Bob is still being recorded');
  cli.type('/quit');
  const bobEnd = Date.now();
  const exit = await cli.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, `natter join exit (log: ${cli.logPath})`);
  const bobDone = cli.events.find((e) => e.event === 'recorded' && e.id === bob.id);
  assert.ok(bobDone, JSON.stringify(cli.events.slice(-5)));
  return [
    [alice, aliceDone, aliceEnd],
    [bob, bobDone, bobEnd],
  ];
}

describe('natter join publishes files and records the room', () => {
  const ctx = recordingRoom('cli-record', { args: ['--mesh'] });

  test('two pages decode the CLI video and audio; the CLI records both pages to WebM', async () => {
    const run = await startRecording(ctx, ROOM);
    const { alice, bob, bot, started } = run;

    // Both pages decode the CLI's VP8 past the file's 60 frames (the loop
    // goes on) at its size, and play its Opus, mostly not concealment.
    for (const p of [alice, bob]) {
      let stats;
      await until(
        async () => {
          stats = (await mediaStats(p.page))[bot.id];
          return stats && stats.framesDecoded > 75 && stats.audioPackets > 100;
        },
        { timeout: 30000, what: `${p.name} decoding the CLI's video and receiving its audio`, describe: () => JSON.stringify(stats) },
      );
      assert.deepEqual([stats.frameWidth, stats.frameHeight], [320, 240]);
      const played = await waitForAudio(p, [bot], { seconds: 1 });
      assert.ok(played.Recorder.samples >= 48000, JSON.stringify(played));
    }

    for (const [p, done, end] of await finishRecording(run)) {
      assertRecording(p, done.file, (end - started[p.id]) / 1000, { width: 320, height: 240 });
    }
    const entries = assertManifest(ctx.dir, [alice, bob], run.cli);
    assert.ok(entries[alice.id].ended < entries[bob.id].ended, 'Alice finished first');
    assert.deepEqual(problemsOf([bob]), []);
  });
});

describe('natter join in an SFU room', () => {
  const ctx = recordingRoom('cli-record-sfu', { maxParticipants: 6 });

  test('two pages decode the CLI video and audio through the SFU; the CLI records both pages; chat and files both ways', async () => {
    const run = await startRecording(ctx, SFU_ROOM);
    const { alice, bob, cli, bot, started } = run;
    // One connection, to the SFU.
    await cli.waitFor((e) => e.event === 'connection' && e.id === 'sfu' && e.state === 'connected', 'connected to the SFU');

    // Both pages decode the CLI's VP8 past the file's 60 frames (the loop
    // goes on) at its size, and play its Opus, mostly not concealment.
    for (const p of [alice, bob]) {
      let stats;
      await until(
        async () => {
          stats = await fromPeer(p, bot.id);
          return stats.framesDecoded > 75 && stats.audioSamples >= 48000;
        },
        { timeout: 30000, what: `${p.name} decoding the CLI's video and playing its audio`, describe: () => JSON.stringify(stats) },
      );
      assert.deepEqual([stats.frameWidth, stats.frameHeight], [320, 240]);
      assert.ok(stats.concealedSamples < stats.audioSamples / 2, `${p.name}'s audio of the CLI is decoded: ${JSON.stringify(stats)}`);
    }

    // Chat both ways, over signaling.
    await chat(alice, [bob], 'hello from Alice');
    const heard = await cli.waitFor((e) => e.event === 'chat' && e.from === alice.id, 'chat from Alice');
    assert.deepEqual([heard.name, heard.text], ['Alice', 'hello from Alice']);
    cli.type('hello from the CLI');
    for (const p of [alice, bob]) {
      await p.page.locator(`[data-testid="chat-message"][data-from="${bot.id}"]`, { hasText: 'hello from the CLI' }).waitFor({ timeout: 15000 });
    }

    // Files over the relay: the CLI's to both pages, Bob's to the CLI.
    const out = randomFile('cli-record-out.bin', 300 * 1024);
    cli.type(`/send ${out.file}`);
    for (const p of [alice, bob]) {
      const sent = await cli.waitFor((e) => e.event === 'file-sent' && e.to === p.id, `file sent to ${p.name}`);
      assert.deepEqual([sent.verified, sent.sha256], [true, out.sha256]);
      await p.page.locator('[data-testid="transfer"][data-direction="receive"][data-state="verified"]', { hasText: 'cli-record-out.bin' }).waitFor({ timeout: 30000 });
      const got = await receivedFile(p, 'cli-record-out.bin');
      assert.deepEqual([got.sha256, got.size], [out.sha256, out.size]);
    }
    const up = randomFile('cli-record-in.bin', 200 * 1024);
    await bob.page.setInputFiles('[data-testid="file-input"]', up.file);
    const received = await cli.waitFor((e) => e.event === 'file-received' && e.from === bob.id, 'file from Bob');
    assert.deepEqual([received.verified, received.sha256, received.size], [true, up.sha256, up.size]);

    const ended = await finishRecording(run);
    // Its one connection was to the SFU, none to the pages.
    assert.deepEqual([...new Set(cli.events.filter((e) => e.event === 'connection').map((e) => e.id))], ['sfu']);

    for (const [p, done, end] of ended) {
      assertRecording(p, done.file, (end - started[p.id]) / 1000, null);
    }
    assertManifest(ctx.dir, [alice, bob], cli);
    // Alice's last packets, after she left, started no recording of their own.
    const ids = JSON.parse(fs.readFileSync(path.join(ctx.dir, 'manifest.json'), 'utf8')).participants.map((e) => e.id);
    assert.deepEqual(ids.sort(), [alice.id, bob.id].sort());
    assert.deepEqual(problemsOf([bob]), []);
  });
});
