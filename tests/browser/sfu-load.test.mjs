// namespace: lo
// Issue 13, acceptance 4 at its smallest: a Chromium page in an SFU
// room with two `natter load` participants decodes their video, and
// they receive the page's. bench/sfu-50 puts 6 pages among 44 of them;
// before natter load sent real VP8 (its frames had a VP8 frame tag and
// filler behind it), each page received 30 frames/s from every one and
// decoded none (framesDecoded 0, a PLI every 200 ms, libvpx), whatever
// the loss. Now its frames are VP8 of all-zero bools, a flat grey
// picture libvpx decodes (crates/natter-server/src/load/media.rs).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, startNatter, startServer, until } from './harness.mjs';

const ROOM = 'sfu-load';
const SYNTHETIC = 2;
/** The sizes natter load's three layers are (media.rs LAYERS). */
const LAYER_SIZES = ['160x90', '320x180', '640x360'];

/** The page's received videos by publisher: frames received and decoded, keyframes, size, decoder. */
function videos(p) {
  return p.page.evaluate(async () => {
    const sfu = window.natter.sfu;
    const byPeer = {};
    if (!sfu) return byPeer;
    (await sfu.pc.getStats()).forEach((r) => {
      const peer = sfu.slots.get(r.mid)?.peer;
      if (r.type !== 'inbound-rtp' || r.kind !== 'video' || !peer) return;
      byPeer[peer] = {
        received: r.framesReceived || 0,
        decoded: r.framesDecoded || 0,
        keyframes: r.keyFramesDecoded || 0,
        plis: r.pliCount || 0,
        size: `${r.frameWidth}x${r.frameHeight}`,
        decoder: r.decoderImplementation,
      };
    });
    return byPeer;
  });
}

describe('a Chromium page among natter load participants in an SFU room', () => {
  let browser;
  let server;
  let load;

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'sfu-load', maxParticipants: 10 });
  });

  after(async () => {
    load?.kill();
    await browser?.close();
    await server?.stop();
  });

  test('the page decodes their VP8 and they receive its video', async () => {
    load = startNatter('sfu-load.load', ['load', server.url, '--room', ROOM, '-n', String(SYNTHETIC), '--slots', '9', '--duration', '0', '--json']);
    const page = await openParticipant(browser, server, { room: ROOM, name: 'Page', query: { width: '320', height: '180', fps: '15' } });
    await join(page);
    // 45 frames is 1.5 s of natter load's 30 frames/s.
    const seen = await until(
      async () => {
        const v = await videos(page);
        const decoding = Object.values(v).filter((x) => x.decoded >= 45);
        return decoding.length === SYNTHETIC && v;
      },
      { timeout: 30000, what: `the page decoding ${SYNTHETIC} natter load videos`, describe: () => videos(page).then(JSON.stringify) },
    );
    for (const [peer, v] of Object.entries(seen)) {
      console.log(`  ${peer}: ${v.decoded} of ${v.received} frames decoded, ${v.keyframes} keyframes, ${v.plis} PLIs, ${v.size}, ${v.decoder}`);
      assert.ok(v.keyframes >= 1, `${peer}: a keyframe decoded`);
      assert.ok(v.decoded >= 0.9 * v.received, `${peer}: ${v.decoded} of ${v.received} frames decoded`);
      assert.ok(LAYER_SIZES.includes(v.size), `${peer}: ${v.size} is one of natter load's layers`);
    }
    // Each natter load participant gets the page's keyframe, then its frames.
    for (let i = 0; i < SYNTHETIC; i++) {
      await load.waitFor((e) => e.event === 'keyframe' && e.participant === `load-${i}` && e.peer === page.id, `load-${i} receiving the page's video`);
    }
    const stats = await load.waitFor(
      (e) => e.event === 'stats' && e.participant === 'load-0' && (e.video_fps?.[page.id] ?? 0) > 0,
      "load-0's report of the page's frames",
    );
    assert.ok(stats.video_fps[page.id] > 0);
    assert.deepEqual(page.problems, []);
  });
});
