// natter and aiortc (a second, independent WebRTC stack) in both
// offer/answer roles: natter's `echo --client` offers to aiortc's echo
// server in both DTLS roles, and aiortc's client offers to natter's echo
// server (tests/peer/aiortc_echo.py). Each side checks 1,000 mixed
// messages (1 B to 256 KiB, text and binary) on a reliable channel and
// 50 on an unordered maxRetransmits-0 one, and closes one channel while
// the server closes the other on `close-me`. Media goes both ways too
// (acceptance 8): natter's client sends VP8 and Opus files that aiortc
// reflects, and aiortc's client checks that natter reflects its camera
// and microphone, decoding its own 640x480 video. Every figure asserted is
// what a peer measured: the summary line of the side that checked (what
// came back and decoded), and the other side's GET /status (what it
// received, decoded, echoed and sent). Run by scripts/test-peer in a
// network namespace with only `lo`; aioice is told to gather 127.0.0.1.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { mediaFiles, runAiortcClient, runClient, startAiortc, startEcho } from './harness.mjs';

/** Address and port of `candidate:... 127.0.0.1 5000 typ host` or `127.0.0.1 5000 host`. */
function endpoint(candidate) {
  const m = /(\S+) (\d+) (?:typ )?(\w+)(?: |$)/.exec(candidate.replace(/^candidate:\S+ \d+ \w+ \d+ /, ''));
  return m && { address: m[1], port: Number(m[2]), type: m[3] };
}

/**
 * What an echo server saw of the client's two channels: 'echo' with
 * 1,000 messages echoed (`bytes` in all), closed by the server on
 * close-me; 'lossy' unordered with maxRetransmits 0, its 50 messages
 * echoed, closed by the client. `counts` reads a channel's counters.
 */
function assertServerChannels(status, { server, bytes, counts }) {
  const channels = Object.values(status.channels);
  const echo = channels.find((c) => c.label === 'echo');
  const lossy = channels.find((c) => c.label === 'lossy');
  assert.deepEqual(
    { ...counts(echo), closed_by: echo?.closed_by, state: echo?.state },
    { messages: 1000, bytes, closed_by: server, state: 'closed' },
    `${server} echoed 1,000 messages on 'echo' and closed it on close-me`,
  );
  assert.deepEqual(
    { messages: counts(lossy).messages, ordered: lossy?.ordered, max_retransmits: lossy?.max_retransmits, closed_by: lossy?.closed_by, state: lossy?.state },
    { messages: 50, ordered: false, max_retransmits: 0, closed_by: 'peer', state: 'closed' },
    `${server} saw 'lossy' unordered with maxRetransmits 0, echoed its 50 messages, and the client closed it`,
  );
}

const failed = (run, peer) => `exit ${run.code} (signal ${run.signal})\n--- ${peer} ---\n${JSON.stringify(peer, null, 1)}\n--- log (tail, full: ${run.logPath}) ---\n${run.tail}`;

describe('natter offers to aiortc', () => {
  let aiortc;
  let connections = 0;

  let files;

  before(async () => {
    files = mediaFiles('aiortc');
    aiortc = await startAiortc({ name: 'aiortc-answerer' });
  });

  after(async () => {
    await aiortc?.stop();
  });

  for (const [setup, natterRole, aiortcRole] of [
    [null, 'server', 'client'],
    ['passive', 'client', 'server'],
  ]) {
    test(`natter as DTLS ${natterRole} (aiortc answers a=setup:${setup ?? 'active'}): the echo check passes`, async (t) => {
      const index = connections++;
      const args = ['--video', files.video, '--audio', files.audio];
      const run = await runClient({ name: `aiortc-${natterRole}`, url: `${aiortc.url}/offer${setup ? `?setup=${setup}` : ''}`, args });
      const peer = (await aiortc.status())[index];
      t.diagnostic(`natter: ${run.stdout.trim()}`);
      t.diagnostic(`aiortc: ${JSON.stringify({ ...peer, answer: undefined })}`);
      assert.equal(run.code, 0, `echo --client failed: ${failed(run, peer)}`);
      const s = run.summary;
      assert.equal(s.reliable.messages, 1000);
      assert.equal(s.reliable.largest, 262144);
      assert.equal(s.unordered.messages, 50);
      assert.deepEqual(peer.tracks, ['video', 'audio'], "aiortc received natter's video and audio");
      // natter sends 3 s of each file: 90 frames of video, 150 of Opus
      // (20 ms each); aiortc decoded at least half of each.
      const { video, audio } = peer.received;
      assert.deepEqual(video?.size, [320, 240], `aiortc decoded natter's video at the file's size: ${JSON.stringify(peer.received)}`);
      assert.ok(video.frames >= 45, `aiortc decoded at least 45 of natter's 90 video frames: ${video.frames}`);
      assert.equal(audio?.sample_rate, 48000, `aiortc decoded natter's Opus at 48 kHz: ${JSON.stringify(peer.received)}`);
      assert.ok(audio.samples >= 1.5 * 48000, `aiortc decoded at least 1.5 s of natter's 3 s of Opus: ${audio.samples} samples`);
      assert.deepEqual(s.media.size, [320, 240], "natter received its video back from aiortc at the file's size");
      assert.ok(s.media.received.every((n, i) => 2 * n >= s.media.sent[i]), `aiortc reflected at least half of each stream: ${JSON.stringify(s.media)}`);
      assert.match(peer.answer, new RegExp(`^a=setup:${setup ?? 'active'}`, 'm'));
      assert.equal(s.dtls_role, natterRole, `natter is the DTLS ${natterRole}`);
      assert.equal(peer.dtls_role, aiortcRole, `aiortc is the DTLS ${aiortcRole}`);
      assert.deepEqual(peer.errors, []);
      assertServerChannels(peer, { server: 'aiortc', bytes: s.reliable.bytes, counts: (c) => ({ messages: c?.messages, bytes: c?.bytes }) });
      assert.equal(endpoint(s.selected_pair.local).port, endpoint(peer.pair.remote).port, "aiortc's nominated pair reaches natter's selected local port");
      assert.equal(endpoint(s.selected_pair.remote).port, endpoint(peer.pair.local).port, "natter's selected pair reaches aiortc's nominated local port");
    });
  }
});

describe('aiortc offers to natter', () => {
  for (const [args, natterRole, aiortcRole] of [
    [[], 'Client', 'server'],
    [['--dtls-server'], 'Server', 'client'],
  ]) {
    test(`aiortc as offerer (actpass), natter answering as DTLS ${natterRole.toLowerCase()}: the echo check passes, media reflected`, async (t) => {
      const echo = await startEcho({ name: `aiortc-offerer-${natterRole.toLowerCase()}`, args });
      try {
        const run = await runAiortcClient({ name: `aiortc-offerer-${natterRole.toLowerCase()}`, url: `${echo.url}/offer`, args: ['--media'] });
        const natter = (await echo.status())[0];
        t.diagnostic(`aiortc: ${run.stdout.trim()}`);
        t.diagnostic(`natter: ${JSON.stringify({ ...natter, counters: undefined })}`);
        assert.equal(run.code, 0, `aiortc_echo.py client failed: ${failed(run, natter)}\n--- natter log (tail) ---\n${echo.log().slice(-3000)}`);
        const s = run.summary;
        assert.equal(s.reliable.messages, 1000, "aiortc received 1,000 matching echoes on 'echo'");
        assert.equal(s.reliable.largest, 262144, 'the largest echo aiortc received is 256 KiB');
        assert.ok(s.reliable.text > 0 && s.reliable.binary > 0, `text and binary echoes: ${JSON.stringify(s.reliable)}`);
        assert.equal(s.unordered.messages, 50, "aiortc received 50 matching echoes on 'lossy'");
        assert.deepEqual(
          { video_frames: s.media.video_frames, video_sizes: s.media.video_sizes, audio_frames: s.media.audio_frames, audio_sample_rates: s.media.audio_sample_rates },
          { video_frames: 30, video_sizes: [[640, 480]], audio_frames: 50, audio_sample_rates: [48000] },
          'aiortc decoded its own video and audio, reflected by natter',
        );
        assert.ok(s.media.audio_samples >= 50 * 960, `50 decoded audio frames hold at least 1 s of samples: ${s.media.audio_samples}`);
        // natter's side of the reflection.
        const video = natter.media.receivers.find((r) => r.frame_size);
        assert.deepEqual(video?.frame_size, [640, 480], `natter received aiortc's 640x480 video: ${JSON.stringify(natter.media)}`);
        assert.ok(natter.media.receivers.length === 2 && natter.media.receivers.every((r) => r.frames_received > 0), `natter received frames of both of aiortc's tracks: ${JSON.stringify(natter.media.receivers)}`);
        const sent = Object.fromEntries(natter.media.senders.map((x) => [x.format, x.frames_sent]));
        assert.ok(sent.Vp8 > 0 && sent.Opus > 0, `natter sent VP8 and Opus frames back: ${JSON.stringify(sent)}`);
        assert.equal(natter.media_errors, 0, 'natter sent back every frame it tried to');
        assert.equal(s.dtls_role, aiortcRole, `aiortc is the DTLS ${aiortcRole}`);
        assert.equal(natter.dtls?.role, natterRole, `natter answers actpass as the DTLS ${natterRole.toLowerCase()}`);
        assert.deepEqual(natter.errors, []);
        assertServerChannels(natter, { server: 'natter', bytes: s.reliable.bytes, counts: (c) => ({ messages: c?.messages_echoed, bytes: c?.bytes_echoed }) });
        assert.equal(endpoint(natter.selected_pair.local).port, endpoint(s.selected_pair.remote).port, "aiortc's nominated pair reaches natter's selected local port");
        assert.equal(endpoint(natter.selected_pair.remote).port, endpoint(s.selected_pair.local).port, "natter's selected pair reaches aiortc's nominated local port");
      } finally {
        await echo.stop();
      }
    });
  }
});
