// The Chromium half of bench/sfu-50 (issue 13, acceptance 4): PAGES
// headless Chromium pages (one browser, one context each, fake camera at
// 320x180 15 fps and fake microphone) join ROOM of a running
// `natter serve --sfu` with the web client. After --warmup seconds each
// page's SFU connection is sampled twice, --seconds apart, and one JSON
// line per page goes to stdout:
//
//   videos        receive slots carrying someone's video at the end
//   connection    the SFU connection's connectionState at the end
//   sizes         how many of those videos arrive at each frame size
//                 (inbound-rtp frameWidth x frameHeight), e.g.
//                 {"160x90": 9}: the layer the server forwards
//   tiles         how many at each tile size the page shows them at, in
//                 device pixels: the size the web client's `tile`
//                 messages tell the server (web/sfu.js sendTiles)
//   fps           frames decoded per second per received video (mean
//                 over those videos; min beside it)
//   received      frames received per second per video (mean): above
//                 fps when the decoder drops or fails frames
//   loss          inbound packets lost / (received + lost), all slots, %
//   freezes       Chromium's freezeCount summed over the videos (a frame
//                 late by max(3 x the mean frame interval, that + 150 ms))
//   freeze_ms     totalFreezesDuration summed, ms
//   keyframes     keyFramesDecoded summed over the videos: keyframes the
//                 server forwarded (a layer switch, a subscriber's
//                 request), which a freeze next to none does not come from
//   packets       RTP packets received per second, all slots: with
//                 `received`, tells a server that stops sending (no
//                 packets) from a page that cannot keep up (packets, few
//                 frames)
//   offer_ms      from the server's welcome to the page writing its SFU
//                 offer (WebSocket messages, timed in the page): what
//                 joining a room this size costs the page
//
//   node bench/sfu-50-pages.mjs --url http://127.0.0.1:PORT --room fifty \
//        --pages 6 --warmup 20 --seconds 30
//
// --tile native (the default) keeps the web client's own layout of a
// 1280x720 window: the largest 16:9 tiles that fit everyone (web/ui.js
// bestGrid), about 128x72 for 41 tiles, 110x62 for 50, which the server
// serves with 160x90 layers. --tile WxH forces a gallery of WxH tiles
// instead (CSS pixels, the page's devicePixelRatio is 1).
//
// Notes go to stderr. Uses tests/browser's harness (playwright-core).

import { parseArgs } from 'node:util';

import { launchBrowser, openParticipant } from '../tests/browser/harness.mjs';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string', default: 'fifty' },
    pages: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    tile: { type: 'string', default: 'native' },
  },
});
const tile = opts.tile === 'native' ? null : /^(\d+)x(\d+)$/.exec(opts.tile);
if (opts.tile !== 'native' && !tile) throw new Error(`--tile WxH or native, not ${opts.tile}`);
/** A gallery of fixed-size tiles, laid out by the grid's own --cols. */
const galleryCss = tile
  ? `.grid { grid-template-columns: repeat(var(--cols, 1), ${tile[1]}px) !important;
            grid-template-rows: repeat(var(--rows, 1), ${tile[2]}px) !important; align-content: start; }
     .tile { min-height: 0 !important; width: ${tile[1]}px; height: ${tile[2]}px; }`
  : null;
if (!opts.url) throw new Error('--url http://HOST:PORT of natter serve --sfu');

/**
 * Runs in each page before its scripts: the times (performance.now) of
 * the first `welcome` the page's WebSocket receives and of the first
 * `offer` it sends, in window.__joinTimes.
 */
function timeJoin() {
  const times = (window.__joinTimes = {});
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (times.offer === undefined && typeof data === 'string' && data.includes('"type":"offer"')) times.offer = performance.now();
    return send.call(this, data);
  };
  const listen = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (type, handler, ...rest) {
    if (type !== 'message') return listen.call(this, type, handler, ...rest);
    const timed = (event) => {
      if (times.welcome === undefined && typeof event.data === 'string' && event.data.includes('"type":"welcome"')) times.welcome = performance.now();
      return handler(event);
    };
    return listen.call(this, type, timed, ...rest);
  };
}

/**
 * Clicks Join and waits for the welcome, as the harness's join does but
 * for up to a minute: six pages pinned to one core of a loaded machine
 * (--modes split) took longer than its 15 s.
 */
async function joinPatiently(p) {
  const minute = { timeout: 60000 };
  await p.page.waitForFunction(() => document.querySelector('[data-testid="join-camera"]').options.length > 0, null, minute);
  await p.page.click('[data-testid="join-button"]');
  p.id = await p.page.waitForFunction(() => window.natter.id, null, minute).then((h) => h.jsonValue());
}

/**
 * The page's SFU connection's inbound-rtp counters, by slot mid and SSRC:
 * a slot may show more than one inbound-rtp (an SSRC it carried before),
 * each counting from its own start.
 */
function sample(page) {
  return page.evaluate(async () => {
    const sfu = window.natter.sfu;
    if (!sfu) return { at: performance.now(), slots: {}, connection: 'none' };
    const slots = {};
    // The tile showing each slot's track, measured as sendTiles does.
    const shown = new Map();
    for (const video of document.querySelectorAll('video')) {
      if (!(video.srcObject instanceof MediaStream) || !video.clientWidth) continue;
      const size = `${Math.round(video.clientWidth * devicePixelRatio)}x${Math.round(video.clientHeight * devicePixelRatio)}`;
      for (const track of video.srcObject.getVideoTracks()) shown.set(track, size);
    }
    const tiles = new Map(sfu.pc.getTransceivers().map((t) => [t.mid, shown.get(t.receiver.track) ?? null]));
    (await sfu.pc.getStats()).forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      slots[`${r.mid} ${r.ssrc}`] = {
        mid: r.mid,
        ssrc: r.ssrc,
        kind: r.kind,
        peer: sfu.slots.get(r.mid)?.peer ?? null,
        size: r.frameWidth ? `${r.frameWidth}x${r.frameHeight}` : null,
        tile: tiles.get(r.mid) ?? null,
        frames: r.framesDecoded || 0,
        framesReceived: r.framesReceived || 0,
        received: r.packetsReceived || 0,
        lost: r.packetsLost || 0,
        freezes: r.freezeCount || 0,
        freezeSeconds: r.totalFreezesDuration || 0,
        keyframes: r.keyFramesDecoded || 0,
      };
    });
    const { welcome, offer } = window.__joinTimes ?? {};
    const offerMs = welcome !== undefined && offer !== undefined ? Math.round(offer - welcome) : null;
    return { at: performance.now(), slots, connection: sfu.pc.connectionState, offerMs };
  });
}

function figures(name, before, after) {
  const seconds = (after.at - before.at) / 1000;
  const fps = [];
  const arrived = [];
  let received = 0;
  let lost = 0;
  let freezes = 0;
  let freezeMs = 0;
  let keyframes = 0;
  const sizes = {};
  const tiles = {};
  const count = (map, key) => {
    map[key ?? 'none'] = (map[key ?? 'none'] ?? 0) + 1;
  };
  const zero = { frames: 0, framesReceived: 0, received: 0, lost: 0, freezes: 0, freezeSeconds: 0, keyframes: 0 };
  // Per mid: the counters' growth summed over its SSRCs, and the entry
  // that received most (the one the slot carries now) for the rest.
  const mids = new Map();
  for (const [key, b] of Object.entries(after.slots)) {
    const a = before.slots[key] ?? zero;
    const m = mids.get(b.mid) ?? { now: b, grew: -1, frames: 0, framesReceived: 0, freezes: 0, freezeSeconds: 0, keyframes: 0 };
    if (b.received - a.received > m.grew) [m.now, m.grew] = [b, b.received - a.received];
    for (const k of ['frames', 'framesReceived', 'freezes', 'freezeSeconds', 'keyframes']) m[k] += b[k] - a[k];
    mids.set(b.mid, m);
    received += b.received - a.received;
    lost += Math.max(0, b.lost - a.lost);
  }
  for (const m of mids.values()) {
    if (m.now.kind !== 'video' || !m.now.peer) continue;
    count(sizes, m.now.size);
    count(tiles, m.now.tile);
    fps.push(m.frames / seconds);
    arrived.push(m.framesReceived / seconds);
    freezes += m.freezes;
    freezeMs += m.freezeSeconds * 1000;
    keyframes += m.keyframes;
  }
  const round = (x) => Math.round(x * 10) / 10;
  return {
    page: name,
    seconds: round(seconds),
    videos: fps.length,
    connection: after.connection,
    sizes,
    tiles,
    fps: round(fps.reduce((s, x) => s + x, 0) / Math.max(1, fps.length)),
    fps_min: round(fps.length ? Math.min(...fps) : 0),
    received: round(arrived.reduce((s, x) => s + x, 0) / Math.max(1, arrived.length)),
    loss: Math.round((lost / Math.max(1, received + lost)) * 10000) / 100,
    packets: round(received / seconds),
    freezes,
    freeze_ms: Math.round(freezeMs),
    keyframes,
    offer_ms: after.offerMs,
  };
}

const server = { url: opts.url, name: 'sfu-50' };
const browser = await launchBrowser();
try {
  const pages = [];
  for (let i = 0; i < Number(opts.pages); i++) {
    const p = await openParticipant(browser, server, {
      room: opts.room,
      name: `page-${i}`,
      query: { width: '320', height: '180', fps: '15' },
      init: timeJoin,
    });
    if (galleryCss) await p.page.addStyleTag({ content: galleryCss });
    await joinPatiently(p);
    pages.push(p);
    console.error(`page-${i} joined as ${p.id}`);
  }
  await new Promise((resolve) => setTimeout(resolve, Number(opts.warmup) * 1000));
  const before = await Promise.all(pages.map((p) => sample(p.page)));
  console.error('sampling');
  await new Promise((resolve) => setTimeout(resolve, Number(opts.seconds) * 1000));
  const after = await Promise.all(pages.map((p) => sample(p.page)));
  pages.forEach((p, i) => console.log(JSON.stringify(figures(p.name, before[i], after[i]))));
} finally {
  await browser.close();
}
