// namespace: lo
// Simulcast sent by natter (issue 18): natter-io's ivf-send example
// sends one video track as three streams (RID q, h, f) from three VP8
// IVF files ffmpeg made at 320x180, 640x360 and 1280x720, to the record
// example over real sockets. Browsers do not receive simulcast, so
// natter offers (ivf-send's POST /local-offer, a=simulcast:send) and
// natter answers (record's POST /offer, a=simulcast:recv); this test
// carries the descriptions between them. record writes one file per
// RID; ffprobe reads each at its size with every frame written, record's
// stats list one receiver per RID and ivf-send's one sender per RID,
// with the same SSRCs. Then with 5% loss in front of record's socket
// (iptables `statistic`): record NACKs each layer and ivf-send repairs
// each with RTX, and every layer still records. Run by scripts/test-peer
// inside a network namespace with only `lo`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { ARTIFACTS } from './harness.mjs';
import { dropAtRandom, ffmpegTool, probe, startExample } from './media.mjs';

const LAYERS = { q: '320x180', h: '640x360', f: '1280x720' };

/** 3 s of ffmpeg's test pattern at `size` in VP8 (IVF), a keyframe a second. */
function encodeVp8(file, size) {
  try {
    execFileSync(ffmpegTool('ffmpeg'), ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=30`, '-frames:v', '90',
      '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-g', '30', '-b:v', '1M', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`ffmpeg could not encode VP8 (Debian's ffmpeg has libvpx: "apt-get install ffmpeg"): ${e.stderr ?? e.message}`);
  }
}

/** POST `body` as JSON to `url`; the JSON answer, if any. */
async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const text = await res.text();
  assert.ok(res.ok, `POST ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/**
 * ivf-send's three files (`args`) to record until it wrote `frames`
 * frames, into `dir`; `lossy` drops 5% at record's port from before the
 * answer is applied. Checks what both tests check and returns record's
 * summary and ivf-send's status, by RID.
 */
async function sendSimulcast(t, { args, dir, name, frames, lossy }) {
  const out = path.join(dir, name);
  const recorder = await startExample('record', `${name}-record`, ['--out', out, '--frames', String(frames)]);
  const sender = await startExample('ivf-send', name, args);
  let undo = () => {};
  try {
    const offer = await post(`${sender.url}/local-offer`);
    assert.match(offer.sdp, /^a=simulcast:send q;h;f\r?$/m, 'natter offers three simulcast streams');
    for (const rid of Object.keys(LAYERS)) assert.match(offer.sdp, new RegExp(`^a=rid:${rid} send\r?$`, 'm'));
    const answer = await post(`${recorder.url}/offer`, offer);
    assert.match(answer.sdp, /^a=simulcast:recv q;h;f\r?$/m, 'natter answers receiving the three');
    if (lossy) {
      const port = Number(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/m.exec(answer.sdp)?.[1]);
      assert.ok(port > 0, "record's answer has a 127.0.0.1 host candidate");
      undo = dropAtRandom(port, 0.05);
    }
    await post(`${sender.url}/answer`, answer);
    const exited = await Promise.race([recorder.exit, new Promise((resolve) => setTimeout(() => resolve(null), 60000))]);
    const status = await sender.status();
    t.diagnostic(`ivf-send: ${JSON.stringify(status)}`);
    assert.ok(exited, `the recorder wrote ${frames} frames within 60 s: ${JSON.stringify(await recorder.status().catch((e) => e.message))}; logs: ${recorder.logPath}, ${sender.logPath}`);
    assert.equal(exited.code, 0, `the recorder exited cleanly; log: ${recorder.logPath}`);
    const summary = JSON.parse(recorder.stdout().trim().split('\n').pop());
    t.diagnostic(`record: ${JSON.stringify(summary)}`);
    assert.deepEqual(summary.errors, []);
    assert.deepEqual(status.errors, []);
    assert.equal(summary.media.dropped.unknown_rid, 0, 'record knew every RID');

    const receivers = Object.fromEntries(summary.media.receivers.map((r) => [r.rid, r]));
    const senders = Object.fromEntries(status.media.senders.map((s) => [s.rid, s]));
    assert.deepEqual(Object.keys(receivers).sort(), Object.keys(LAYERS).sort(), "record's stats have one receiver per RID");
    assert.deepEqual(Object.keys(senders).sort(), Object.keys(LAYERS).sort(), "ivf-send's stats have one sender per RID");
    assert.equal(new Set(status.media.senders.map((s) => s.ssrc)).size, 3, 'each stream has its own SSRC');
    let decoded = 0;
    for (const [rid, size] of Object.entries(LAYERS)) {
      assert.equal(receivers[rid].ssrc, senders[rid].ssrc, `record receives ${rid} on the SSRC ivf-send sends it on`);
      assert.ok(senders[rid].frames_sent > 0, `ivf-send sent frames of ${rid}`);
      const video = probe(path.join(out, `video-${rid}.ivf`), 'v');
      t.diagnostic(`ffprobe video-${rid}.ivf: ${JSON.stringify(video)}`);
      assert.equal(video.codec_name, 'vp8');
      assert.equal(`${video.width}x${video.height}`, size, `video-${rid}.ivf has the size of send-${rid}.ivf`);
      // The streams share the files' frame rate: each holds about a third.
      assert.ok(Number(video.nb_read_frames) >= frames / 6, `ffprobe decodes at least a sixth of the ${frames} frames in video-${rid}.ivf: ${video.nb_read_frames}`);
      decoded += Number(video.nb_read_frames);
    }
    assert.equal(decoded, frames, 'ffprobe decodes every frame record wrote, across the three files');
    return { receivers, senders };
  } finally {
    undo();
    await sender.stop();
    await recorder.stop();
  }
}

describe('simulcast from natter-io to natter-io', () => {
  const dir = path.join(ARTIFACTS, 'simulcast-send');
  const args = [];
  before(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    for (const [rid, size] of Object.entries(LAYERS)) {
      const file = path.join(dir, `send-${rid}.ivf`);
      encodeVp8(file, size);
      args.push('--layer', `${rid}=${file}`);
    }
  });

  test("ivf-send's three VP8 streams (q/h/f) are recorded by record to three files; ffprobe reads 320x180, 640x360, 1280x720 and every frame", (t) =>
    sendSimulcast(t, { args, dir, name: 'simulcast-send', frames: 270 }));

  test("with 5% loss in front of record's socket, record NACKs each layer and ivf-send repairs each with RTX", async (t) => {
    // About 6 s of the three layers: q alone has some 200 packets to lose from.
    const { receivers, senders } = await sendSimulcast(t, { args, dir, name: 'simulcast-send-loss', frames: 540, lossy: true });
    for (const rid of Object.keys(LAYERS)) {
      assert.ok(receivers[rid].nack_count > 0, `record sent NACKs for ${rid}`);
      assert.ok(senders[rid].nack_count > 0, `ivf-send got NACKs for ${rid}`);
      assert.ok(senders[rid].retransmitted_packets_sent > 0 && receivers[rid].retransmitted_packets_received > 0,
        `${rid} was repaired by RTX: sent ${senders[rid].retransmitted_packets_sent}, received ${receivers[rid].retransmitted_packets_received}`);
    }
  });
});
