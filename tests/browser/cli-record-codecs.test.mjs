// Issue 14: `natter join --record` records H.264 and AV1, not only VP8.
// Two Chromium pages in a mesh room prefer H.264 (Hana) and AV1 (Ada)
// for their camera (setCodecPreferences on every video transceiver
// before each offer or answer); natter join, whose receive side offers
// Chromium's codecs, records Hana to Hana.mkv (Matroska, H.264) and Ada
// to Ada.webm (AV1). ffprobe finds an h264 or av1 stream and an Opus
// one, a keyframe first, a duration within 1 s of what the test's clock
// saw, and ffmpeg decodes each file without an error.
//
// Passed 3 runs in a row here, 11-17 s each.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ARTIFACTS, ffmpegDecodeErrors, ffmpegRun, join, launchBrowser, openParticipant, startNatter, startServer, until } from './harness.mjs';

const ROOM = 'record-codecs';

/**
 * A page script: video transceivers prefer `mime` (e.g. video/h264) in
 * every offer and answer it makes; the connections go in window.__pcs.
 */
function prefer(mime) {
  return `(() => {
    window.__pcs = new Set();
    const prefer = (pc) => {
      window.__pcs.add(pc);
      const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
      const first = codecs.filter((c) => c.mimeType.toLowerCase() === '${mime}');
      for (const t of pc.getTransceivers()) {
        if (t.stopped || t.receiver.track.kind !== 'video' || first.length === 0) continue;
        t.setCodecPreferences([...first, ...codecs.filter((c) => !first.includes(c))]);
      }
    };
    for (const name of ['createOffer', 'createAnswer', 'setLocalDescription']) {
      const original = RTCPeerConnection.prototype[name];
      RTCPeerConnection.prototype[name] = function (...args) {
        prefer(this);
        return original.apply(this, args);
      };
    }
  })();`;
}

/** The most video frames `p`'s page has encoded on one of its connections. */
function framesEncoded(p) {
  return p.page.evaluate(async () => {
    let frames = 0;
    for (const pc of window.__pcs) {
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'outbound-rtp' && r.kind === 'video') frames = Math.max(frames, r.framesEncoded || 0);
      });
    }
    return frames;
  });
}

function probe(file) {
  const out = (args) => ffmpegRun('ffprobe', ['-v', 'error', ...args, file]).stdout;
  const info = JSON.parse(out(['-count_frames', '-show_entries', 'stream=codec_type,codec_name,nb_read_frames:format=duration,format_name', '-of', 'json']));
  const first = out(['-select_streams', 'v', '-read_intervals', '%+#1', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0']).trim();
  return {
    format: info.format.format_name,
    duration: Number(info.format.duration),
    streams: info.streams.map((s) => `${s.codec_type}/${s.codec_name}/${Number(s.nb_read_frames) > 0}`),
    firstKeyframe: first.split('\n')[0] === '1',
  };
}

const ctx = {};
before(async () => {
  ctx.dir = path.join(ARTIFACTS, 'cli-record-codecs');
  fs.rmSync(ctx.dir, { recursive: true, force: true });
  ctx.browser = await launchBrowser();
  ctx.server = await startServer({ name: 'cli-record-codecs', args: ['--mesh'] });
});
after(async () => {
  ctx.cli?.kill();
  await ctx.browser?.close();
  if (ctx.server) await ctx.server.stopCleanly();
});

test('natter join records an H.264 page to Matroska and an AV1 page to WebM', async () => {
  const hana = await openParticipant(ctx.browser, ctx.server, { room: ROOM, name: 'Hana', init: prefer('video/h264') });
  await join(hana);
  const ada = await openParticipant(ctx.browser, ctx.server, { room: ROOM, name: 'Ada', init: prefer('video/av1') });
  await join(ada);
  const cli = startNatter('cli-record-codecs.cli', ['join', ctx.server.url, '--room', ROOM, '--json', '--name', 'Recorder', '--record', ctx.dir]);
  ctx.cli = cli;
  await cli.waitFor((e) => e.event === 'joined', 'joined');
  const expected = [
    [hana, 'h264', '.mkv'],
    [ada, 'av1', '.webm'],
  ];
  const started = {};
  const encoded = {};
  for (const [p, codec, ext] of expected) {
    const recording = await cli.waitFor((e) => e.event === 'recording' && e.id === p.id, `recording ${p.name}`);
    started[p.id] = Date.now();
    encoded[p.id] = await framesEncoded(p);
    assert.equal(recording.video, codec, JSON.stringify(recording));
    assert.equal(path.extname(recording.file), ext);
  }
  // 45 more frames of each camera (3 s at the pages' 15 fps).
  for (const [p] of expected) {
    let now;
    await until(
      async () => (now = await framesEncoded(p)) >= encoded[p.id] + 45,
      { timeout: 20000, what: `${p.name} encoding 45 frames`, describe: () => `${now} frames, ${encoded[p.id]} at the start` },
    );
  }
  cli.type('/quit');
  const stopped = Date.now();
  assert.deepEqual(await cli.exited, { code: 0, signal: null }, `natter join exit (log: ${cli.logPath})`);
  const manifest = JSON.parse(fs.readFileSync(path.join(ctx.dir, 'manifest.json'), 'utf8'));
  for (const [p, codec] of expected) {
    const done = cli.events.find((e) => e.event === 'recorded' && e.id === p.id);
    assert.ok(done && done.error === null, JSON.stringify(done));
    const seconds = (stopped - started[p.id]) / 1000;
    const got = probe(done.file);
    console.log(`${p.name}: ${JSON.stringify(got)}, recorded for ${seconds.toFixed(2)} s by the test's clock`);
    assert.equal(got.format, 'matroska,webm');
    assert.deepEqual(got.streams, [`video/${codec}/true`, 'audio/opus/true']);
    assert.ok(got.firstKeyframe, `${p.name}'s file starts on a keyframe`);
    assert.ok(Math.abs(got.duration - seconds) <= 1, `${p.name}: ffprobe says ${got.duration} s, the test saw ${seconds.toFixed(2)} s`);
    assert.equal(ffmpegDecodeErrors(done.file), '');
    const entry = manifest.participants.find((e) => e.id === p.id);
    assert.deepEqual(entry.tracks.map((t) => `${t.kind}/${t.codec}`), [`video/${codec}`, 'audio/opus']);
  }
});
