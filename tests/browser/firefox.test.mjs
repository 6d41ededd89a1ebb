// namespace: veth
// Issue 17, acceptance 2: `natter serve`'s web client with Firefox ESR
// (puppeteer-core over WebDriver BiDi) and Chromium (playwright-core) in
// one call. Each joins the room through the page a person opens, fake
// camera and microphone on; each decodes the other's video (framesDecoded
// growing, 320x240, the tile's <video> playing) and plays its audio;
// chat goes both ways and a file goes from Firefox to Chromium byte-exact
// over the data channels; whoever leaves disappears from the other's
// grid. Both offer directions are covered: the one who joins second
// offers, so Firefox offers first, then Chromium after it rejoins.
// Firefox gathers no candidates on `lo` nor without a default route, so
// this runs in scripts/test-browser's veth namespace, and Chromium gathers
// on the veth only, as a person's would on a real network: when Chromium
// may use 127.0.0.1 too, Firefox answers its checks from there (making
// the pair writable, so libwebrtc stops gathering) but never uses that
// pair itself, and about one call in two never connects.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  chat,
  join,
  launchBrowser,
  launchFirefox,
  mediaStats,
  openParticipant,
  problemsOf,
  sendAndVerifyFile,
  startServer,
  until,
  waitForAudio,
  waitForFramesToGrow,
  waitForMedia,
} from './harness.mjs';

const ROOM = 'firefox';

/** What `p`'s tile of `other` shows: its name and its <video>. */
function tileOf(p, other) {
  return p.page.evaluate((id) => {
    const tile = document.querySelector(`[data-testid="tile"][data-peer-id="${id}"]`);
    if (!tile) return null;
    const video = tile.querySelector('video');
    return { name: tile.dataset.name, width: video.videoWidth, height: video.videoHeight, paused: video.paused, time: video.currentTime };
  }, other.id);
}

/**
 * Checks that `p` decodes `other`'s 320x240 video with frames growing and
 * the tile's video advancing, and plays a second of its audio; returns
 * what it measured.
 */
async function checkMedia(p, other) {
  const first = (await waitForMedia(p, [other]))[other.id];
  const t0 = Date.now();
  assert.deepEqual(Object.keys(await mediaStats(p.page)), [other.id], `${p.name} has one connection, to ${other.name}`);
  const grown = (await waitForFramesToGrow(p, [other]))[other.id];
  assert.deepEqual({ width: grown.frameWidth, height: grown.frameHeight }, { width: 320, height: 240 }, `${p.name} decodes ${other.name}'s camera at 320x240`);
  const audio = (await waitForAudio(p, [other]))[other.name];
  const shown = await until(async () => (await tileOf(p, other))?.width > 0 && tileOf(p, other), {
    what: `${p.name}'s tile of ${other.name} to show video`,
    describe: () => tileOf(p, other),
  });
  assert.equal(shown.name, other.name, `${p.name}'s tile is named`);
  assert.equal(shown.paused, false, `${p.name}'s tile of ${other.name} plays`);
  await until(async () => (await tileOf(p, other)).time > shown.time, {
    timeout: 5000,
    what: `${p.name}'s tile of ${other.name} to advance`,
    describe: () => tileOf(p, other),
  });
  const last = (await mediaStats(p.page))[other.id];
  const fps = Math.round(((last.framesDecoded - first.framesDecoded) * 1000) / (Date.now() - t0));
  return { framesDecoded: last.framesDecoded, fps, pair: `${grown.local}/${grown.remote}`, audio };
}

/** `who` clicks Leave; `other` must drop its tile and its connection at once (not after a timeout). */
async function leave(who, other) {
  const id = who.id;
  await who.page.click('[data-testid="leave"]');
  await other.page.locator(`[data-testid="tile"][data-peer-id="${id}"]`).waitFor({ state: 'detached', timeout: 5000 });
  assert.equal(await other.page.evaluate((id) => window.natter.peers.has(id), id), false, `${other.name} closed the connection to ${who.name}`);
  await who.page.locator('[data-testid="join-button"]').waitFor({ timeout: 5000 });
}

describe('Firefox and Chromium in one call of natter serve', () => {
  let server, chromium, firefox, chrome, fox;

  before(async () => {
    [chromium, firefox] = await Promise.all([launchBrowser({ loopback: false }), launchFirefox()]);
    server = await startServer({ name: 'firefox', maxParticipants: 2, args: ['--mesh'] });
    chrome = await openParticipant(chromium, server, { room: ROOM, name: 'Chromium' });
    fox = await openParticipant(firefox, server, { room: ROOM, name: 'Firefox' });
  });

  after(async () => {
    await Promise.all([chromium?.close(), firefox?.close()]);
    await server?.stopCleanly();
  });

  test('Firefox joins second and offers: each decodes and plays the other', async (t) => {
    await join(chrome);
    await join(fox);
    for (const [p, other] of [
      [fox, chrome],
      [chrome, fox],
    ]) {
      t.diagnostic(`${p.name} from ${other.name}: ${JSON.stringify(await checkMedia(p, other))}`);
    }
    assert.deepEqual(problemsOf([chrome, fox]), []);
  });

  test('chat messages go both ways', async () => {
    for (const [from, to] of [
      [fox, chrome],
      [chrome, fox],
    ]) {
      const text = `hello from ${from.name} ${Math.random().toString(36).slice(2, 8)}`;
      await chat(from, [to], text);
      // Read back from the DOM, independently of chat()'s wait.
      const shown = await to.page.evaluate(
        ({ id, text }) => [...document.querySelectorAll(`[data-testid="chat-message"][data-from="${id}"]`)].filter((m) => m.textContent.includes(text)).length,
        { id: from.id, text },
      );
      assert.equal(shown, 1, `${to.name} shows "${text}" once`);
    }
  });

  test('a 2 MB file from Firefox arrives byte-exact at Chromium', async () => {
    await sendAndVerifyFile(fox, [chrome], 'firefox-2MB.bin', 2 * 1024 * 1024);
  });

  test('Firefox leaves: Chromium drops its tile and connection', async () => {
    await leave(fox, chrome);
  });

  test('Firefox rejoins; Chromium leaves and rejoins, offering this time: each decodes and plays the other', async (t) => {
    await join(fox);
    await checkMedia(chrome, fox);
    await leave(chrome, fox);
    await join(chrome);
    for (const [p, other] of [
      [fox, chrome],
      [chrome, fox],
    ]) {
      t.diagnostic(`${p.name} from ${other.name}, Chromium offering: ${JSON.stringify(await checkMedia(p, other))}`);
    }
    await chat(fox, [chrome], 'Firefox again');
    await chat(chrome, [fox], 'Chromium again');
  });

  test('Chromium leaves: Firefox drops its tile and connection', async () => {
    await leave(chrome, fox);
    assert.deepEqual(problemsOf([chrome, fox]), []);
  });
});
