// Issue 14, acceptance 1: `natter join --video X.ivf --audio Y.ogg
// --record DIR` in a room with two Chromium pages (fake camera and
// microphone). Both pages decode the CLI's looped VP8 and play its looped
// Opus; the CLI records each page's camera and microphone to a WebM file
// of its own, starting on a keyframe (it asks with PLI). Alice leaving
// finishes her file at once; the CLI leaving (/quit) finishes Bob's and
// the manifest. ffprobe finds a VP8 and an Opus stream in each file, a
// keyframe first, and a duration within 1 s of the time the test saw the
// recording run; ffmpeg decodes both files without an error.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, ffmpegDecodeErrors, ffmpegRun, join, launchBrowser, mediaStats, openParticipant, problemsOf, startNatter, startServer, until, waitForAudio } from './harness.mjs';

const ROOM = 'record';

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

describe('natter join publishes files and records the room', () => {
  let server;
  let browser;
  let cli;
  const dir = path.join(ARTIFACTS, 'cli-record');

  before(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    browser = await launchBrowser();
    server = await startServer({ name: 'cli-record' });
  });

  after(async () => {
    cli?.kill();
    await browser?.close();
    if (server) await server.stopCleanly();
  });

  test('two pages decode the CLI video and audio; the CLI records both pages to WebM', async () => {
    const { ivf, ogg } = media();
    const alice = await openParticipant(browser, server, { room: ROOM, name: 'Alice' });
    await join(alice);
    const bob = await openParticipant(browser, server, { room: ROOM, name: 'Bob' });
    await join(bob);
    cli = startNatter(`${server.name}.cli`, ['join', server.url, '--room', ROOM, '--json', '--name', 'Recorder', '--video', ivf, '--audio', ogg, '--record', dir]);
    const joined = await cli.waitFor((e) => e.event === 'joined', 'joined');
    const bot = { id: joined.id, name: 'Recorder' };

    // Each page's file starts once its first keyframe came; the test's clock starts there too.
    const started = {};
    for (const p of [alice, bob]) {
      const recording = await cli.waitFor((e) => e.event === 'recording' && e.id === p.id, `recording ${p.name}`);
      started[p.id] = Date.now();
      assert.equal(recording.video, 'vp8');
      assert.equal(path.dirname(recording.file), dir);
    }

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

    // Alice leaves: her file is finished at once, while Bob's goes on.
    await alice.page.click('[data-testid="leave"]');
    const aliceEnd = Date.now();
    const aliceDone = await cli.waitFor((e) => e.event === 'recorded' && e.id === alice.id, 'Alice recorded', 10000);
    assert.equal(aliceDone.error, null);
    assert.ok(!cli.events.some((e) => e.event === 'recorded' && e.id === bob.id), 'Bob is still being recorded');

    // The CLI leaves: Bob's file and the manifest are finished.
    cli.type('/quit');
    const bobEnd = Date.now();
    const exit = await cli.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, `natter join exit (log: ${cli.logPath})`);
    const bobDone = cli.events.find((e) => e.event === 'recorded' && e.id === bob.id);
    assert.ok(bobDone, JSON.stringify(cli.events.slice(-5)));

    const ends = { [alice.id]: aliceEnd, [bob.id]: bobEnd };
    for (const [p, done] of [[alice, aliceDone], [bob, bobDone]]) {
      const seconds = (ends[p.id] - started[p.id]) / 1000;
      const got = probe(done.file);
      console.log(`${p.name}: ${JSON.stringify(got)}, recorded for ${seconds.toFixed(2)} s by the test's clock`);
      assert.equal(got.format, 'matroska,webm');
      const video = got.streams.find((s) => s.type === 'video');
      const audio = got.streams.find((s) => s.type === 'audio');
      assert.deepEqual({ codec: video?.codec, width: video?.width, height: video?.height }, { codec: 'vp8', width: 320, height: 240 });
      assert.equal(audio?.codec, 'opus');
      assert.ok(video.frames > 0 && audio.frames > 0, JSON.stringify(got.streams));
      assert.ok(got.firstKeyframe, `${p.name}'s file starts on a keyframe`);
      assert.ok(Math.abs(got.duration - seconds) <= 1, `${p.name}: ffprobe says ${got.duration} s, the test saw ${seconds.toFixed(2)} s`);
      // ffmpeg decodes every frame without a complaint.
      assert.equal(ffmpegDecodeErrors(done.file), '');
    }

    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.ok(manifest.ended >= manifest.started);
    const entries = Object.fromEntries(manifest.participants.map((e) => [e.id, e]));
    for (const p of [alice, bob]) {
      const e = entries[p.id];
      assert.ok(e, `${p.name} in the manifest: ${JSON.stringify(manifest)}`);
      assert.equal(e.name, p.name);
      assert.equal(e.file, path.basename(cli.events.find((n) => n.event === 'recorded' && n.id === p.id).file));
      assert.ok(e.ended > e.started);
      assert.deepEqual(e.tracks.map((t) => `${t.kind}/${t.codec}`), ['video/vp8', 'audio/opus']);
      assert.ok(e.tracks.every((t) => (t.frames ?? t.packets) > 0), JSON.stringify(e.tracks));
    }
    assert.ok(entries[alice.id].ended < entries[bob.id].ended, 'Alice finished first');
    assert.deepEqual(problemsOf([bob]), []);
  });
});
