// namespace: lo
// Issue 13, acceptance 4: a Chromium page joining an SFU room that
// already holds 40 `natter load` participants (bench/sfu-50 has 44 and 6
// pages). The page writes its one offer after the welcome, decodes the
// 9 videos of its receive slots (web/sfu.js POOL), and its own layout
// makes them small: 41 tiles in a 1280x720 window are about 141x71 CSS
// pixels (web/ui.js bestGrid; .tile has no minimum height), each `tile`
// message it sends says the size its video is shown at, and the server
// forwards the layer covering that, natter load's 160x90 (its layers
// are 160x90, 320x180 and 640x360). Before, .tile's min-height of 120 px
// asked for 320x180 whatever the room's size.
//
// The time from the welcome to the offer is printed, not asserted
// (bench/sfu-50 reports it per page): 90-175 ms here at load averages
// of 1 to 8, the welcome's handler 42-56 ms of it since tiles get their
// <video> only with a stream to play (web/ui.js videoOf).
//
// Before the layout change this fails: the tiles were 119x116 (.tile's
// min-height), which no 160x90 covers. 6 passes in a row on the shared
// machine (load average 7-8), 6.5-17 s each.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, startNatter, startServer, until } from './harness.mjs';

const ROOM = 'forty';
const SYNTHETIC = 40;
/** natter load's smallest layer (crates/natter-server/src/load/media.rs). */
const SMALLEST = { width: 160, height: 90 };
/** Receive slots of video a page has (web/sfu.js POOL.video). */
const VIDEO_SLOTS = 9;

/**
 * Runs in the page before its scripts: the times of the first `welcome`
 * received and of the first `offer` sent, and every `tile` message
 * sent, in window.__room.
 */
function watchSignaling() {
  const seen = (window.__room = { tiles: [] });
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const message = typeof data === 'string' ? JSON.parse(data) : {};
    if (message.type === 'offer' && seen.offer === undefined) seen.offer = performance.now();
    if (message.type === 'tile') seen.tiles.push(message);
    return send.call(this, data);
  };
  const listen = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (type, handler, ...rest) {
    if (type !== 'message') return listen.call(this, type, handler, ...rest);
    const timed = (event) => {
      if (seen.welcome === undefined && event.data.includes('"type":"welcome"')) seen.welcome = performance.now();
      return handler(event);
    };
    return listen.call(this, type, timed, ...rest);
  };
}

/**
 * Per receive slot carrying a video: frames decoded, the frame size,
 * the size (device pixels) its tile shows it at, and the last `tile`
 * message sent for that slot.
 */
function slots(p) {
  return p.page.evaluate(async () => {
    const sfu = window.natter.sfu;
    if (!sfu) return [];
    const shownAt = new Map();
    for (const video of document.querySelectorAll('video')) {
      if (!(video.srcObject instanceof MediaStream)) continue;
      const size = { width: Math.round(video.clientWidth * devicePixelRatio), height: Math.round(video.clientHeight * devicePixelRatio) };
      for (const track of video.srcObject.getVideoTracks()) shownAt.set(track, size);
    }
    const lastTile = new Map(window.__room.tiles.map((t) => [t.mid, { width: t.width, height: t.height }]));
    const out = [];
    for (const t of sfu.pc.getTransceivers()) {
      const slot = sfu.slots.get(t.mid);
      if (!slot?.peer || slot.kind !== 'video') continue;
      let decoded = 0;
      let frame = null;
      (await t.receiver.getStats()).forEach((r) => {
        if (r.type !== 'inbound-rtp') return;
        decoded += r.framesDecoded || 0;
        if (r.frameWidth) frame = { width: r.frameWidth, height: r.frameHeight };
      });
      out.push({ mid: t.mid, peer: slot.peer, decoded, frame, shown: shownAt.get(t.receiver.track) ?? null, sent: lastTile.get(t.mid) ?? null });
    }
    return out;
  });
}

describe(`a Chromium page joining an SFU room of ${SYNTHETIC} natter load participants`, () => {
  let browser;
  let server;
  let load;

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'sfu-room-of-40', maxParticipants: SYNTHETIC + 1 });
  });

  after(async () => {
    load?.kill();
    await browser?.close();
    await server?.stop();
  });

  test('it offers, decodes 9 videos at 160x90, and its tile messages say the size each is shown at', async (t) => {
    load = startNatter('sfu-room-of-40.load', ['load', server.url, '--room', ROOM, '-n', String(SYNTHETIC), '--slots', '9', '--duration', '0', '--json']);
    for (let i = 0; i < SYNTHETIC; i++) await load.waitFor((e) => e.event === 'joined' && e.participant === `load-${i}`, `load-${i} to join`, 60000);

    const page = await openParticipant(browser, server, { room: ROOM, name: 'Page', query: { width: '320', height: '180', fps: '15' }, init: watchSignaling });
    await join(page);
    const times = await page.page.waitForFunction(() => window.__room.offer !== undefined && window.__room, null, { timeout: 60000 }).then((h) => h.jsonValue());
    t.diagnostic(`welcome -> offer: ${Math.round(times.offer - times.welcome)} ms`);
    assert.equal(await page.page.locator('[data-testid="tile"]').count(), SYNTHETIC + 1, 'a tile for everyone');

    // 45 frames is 1.5 s of natter load's 30 frames/s; the tile messages
    // go at most every 250 ms after a resize (web/sfu.js TILE_EVERY_MS).
    let last;
    const got = await until(
      async () => {
        last = await slots(page);
        const settled = last.filter((s) => s.decoded >= 45 && s.frame?.width === SMALLEST.width && s.shown && s.sent?.width === s.shown.width && s.sent?.height === s.shown.height);
        return settled.length === VIDEO_SLOTS && last;
      },
      { timeout: 45000, interval: 250, what: `the page decoding ${VIDEO_SLOTS} videos at 160x90, each slot's last tile message its video's size`, describe: () => JSON.stringify(last) },
    );
    t.diagnostic(`slots: ${JSON.stringify(got.map((s) => `${s.frame.width}x${s.frame.height} in ${s.shown.width}x${s.shown.height}`))}`);
    for (const s of got) {
      assert.ok(s.shown.width <= SMALLEST.width && s.shown.height <= SMALLEST.height, `slot ${s.mid}: a tile of 41 (${s.shown.width}x${s.shown.height}) fits natter load's 160x90`);
    }
    // At first the server's estimate alone may hold everyone at 160x90;
    // 3 s on (its estimates grow from 1 Mbit/s, layers switch within a
    // second), the tiles are what holds them there.
    const start = new Map(got.map((s) => [s.mid, s.decoded]));
    await until(
      async () => {
        last = await slots(page);
        return last.every((s) => s.decoded >= start.get(s.mid) + 90) && last;
      },
      { timeout: 30000, interval: 250, what: 'the page decoding 3 s more of each video', describe: () => JSON.stringify(last) },
    );
    for (const s of last) assert.deepEqual(s.frame, SMALLEST, `slot ${s.mid} still arrives at the layer covering its ${s.shown.width}x${s.shown.height} tile`);
    assert.deepEqual(page.problems, []);
  });
});
