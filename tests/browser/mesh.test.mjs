// Issue 6, acceptance 1, 4 and 5: three participants in one room of
// `natter serve --dev` exchange video, audio, chat and a 5 MB file over
// direct (host) paths; a hostile WebSocket client gets every documented
// error code while the call goes on; screenshots of the join screen and
// of the call.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  chat,
  join,
  launchBrowser,
  mediaStats,
  openParticipant,
  problemsOf,
  screenshotPath,
  sendAndVerifyFile,
  startServer,
  until,
  waitForAudio,
  waitForMedia,
} from './harness.mjs';
import { rawClient } from './raw-client.mjs';

const ROOM = 'mesh';

describe('three participants, direct', () => {
  let server;
  let browser;
  let people = [];
  const timings = {};

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'mesh', maxParticipants: 3, args: ['--mesh'] });
  });

  after(async () => {
    if (timings && Object.keys(timings).length) console.log('# timings (ms):', JSON.stringify(timings));
    await browser?.close();
    if (server) {
      const exit = await server.stopCleanly();
      assert.ok(exit.ms < 10000, `natter serve took ${exit.ms} ms to stop`);
    }
  });

  test('join screen: preview of the fake camera and the device lists', async () => {
    const alice = await openParticipant(browser, server, { room: ROOM, name: 'Alice' });
    people.push(alice);
    const page = alice.page;
    // The preview plays real frames of the chosen camera.
    await page.waitForFunction(() => {
      const v = document.querySelector('[data-testid="join-preview"]');
      return v.readyState >= 2 && v.videoWidth > 0 && !v.paused;
    });
    const devices = await page.evaluate(() => ({
      cameras: [...document.querySelector('[data-testid="join-camera"]').options].map((o) => o.value),
      mics: [...document.querySelector('[data-testid="join-mic"]').options].map((o) => o.value),
      roomFieldShown: !document.querySelector('[data-testid="join-room"]').closest('label').hidden,
    }));
    assert.ok(devices.cameras.length >= 2, `a camera and "none": ${devices.cameras}`);
    assert.ok(devices.mics.length >= 2, `a microphone and "none": ${devices.mics}`);
    assert.equal(devices.roomFieldShown, false, 'the room comes from ?room=, so no room field');
    await page.screenshot({ path: screenshotPath('join.png') });
  });

  test('three participants decode each other’s video and audio', async (t) => {
    const t0 = Date.now();
    const [alice] = people;
    people.push(await openParticipant(browser, server, { room: ROOM, name: 'Bob' }));
    people.push(await openParticipant(browser, server, { room: ROOM, name: 'Carol' }));
    for (const p of people) await join(p);
    timings.joined = Date.now() - t0;
    for (const p of people) {
      const others = people.filter((o) => o !== p);
      const stats = await waitForMedia(p, others);
      assert.deepEqual(Object.keys(stats).sort(), others.map((o) => o.id).sort(), `${p.name} has exactly one connection per other participant`);
      t.diagnostic(`${p.name} plays audio (samples, concealed) over 1 s: ${JSON.stringify(await waitForAudio(p, others))}`);
      // Each other participant has a tile with its name.
      for (const o of others) {
        await p.page.waitForSelector(`[data-testid="tile"][data-peer-id="${o.id}"][data-name="${o.name}"]`);
      }
    }
    timings.media = Date.now() - t0;
    assert.equal(await alice.page.locator('[data-testid="tile"]').count(), 3);
    assert.deepEqual(problemsOf(people), []);
  });

  test('a chat message from each reaches the other two', async () => {
    for (const p of people) {
      await chat(p, people.filter((o) => o !== p), `hello from ${p.name} ${Math.random().toString(36).slice(2, 8)}`);
    }
  });

  test('a 5 MB file from one arrives byte-exact at both others', async () => {
    const t0 = Date.now();
    const [alice, bob, carol] = people;
    const file = await sendAndVerifyFile(alice, [bob, carol], 'mesh-5MB.bin', 5 * 1024 * 1024);
    timings.file5MB = Date.now() - t0;
    // The download link hands the user the same bytes.
    const [download] = await Promise.all([bob.page.waitForEvent('download'), bob.page.click('[data-testid="transfer-download"]')]);
    const saved = fs.readFileSync(await download.path());
    assert.equal(createHash('sha256').update(saved).digest('hex'), file.sha256, 'downloaded file');
  });

  test('tiles show who speaks and how good each connection is', async () => {
    const [alice, bob] = people;
    // The fake microphone beeps: its audio energy, read from getStats,
    // lights Alice's tile on Bob's screen.
    await bob.page.waitForSelector(`[data-testid="tile"][data-peer-id="${alice.id}"].speaking`, { timeout: 10000 });
    // Loopback is a good connection: round trip well under 150 ms, no loss.
    for (const p of people) {
      for (const o of people.filter((x) => x !== p)) {
        await p.page.waitForSelector(`[data-testid="tile"][data-peer-id="${o.id}"] [data-testid="quality"][data-quality="good"]`, { timeout: 10000 });
      }
    }
    const label = await bob.page.getAttribute(`[data-testid="tile"][data-peer-id="${alice.id}"] [data-testid="quality"]`, 'aria-label');
    assert.match(label, /connection good: round trip \d+ ms, loss \d/);
  });

  test('mute and camera off show on the others’ tiles, and back', async () => {
    const [alice, bob, carol] = people;
    const badge = (p, which) => p.page.locator(`[data-testid="tile"][data-peer-id="${alice.id}"] [data-testid="${which}"]`);
    for (const p of [bob, carol]) {
      assert.equal(await badge(p, 'tile-muted').isVisible(), false);
      assert.equal(await badge(p, 'tile-camera-off').isVisible(), false);
    }
    await alice.page.click('[data-testid="mute"]');
    await alice.page.click('[data-testid="camera"]');
    assert.equal(await alice.page.getAttribute('[data-testid="mute"]', 'aria-pressed'), 'true');
    assert.equal(await alice.page.getAttribute('[data-testid="camera"]', 'aria-pressed'), 'true');
    // What Alice sends really stops: her tracks are disabled.
    assert.deepEqual(await alice.page.evaluate(() => window.natter.localStream.getTracks().map((t) => t.enabled)), [false, false]);
    for (const p of [bob, carol]) {
      await badge(p, 'tile-muted').waitFor({ state: 'visible', timeout: 5000 });
      await badge(p, 'tile-camera-off').waitFor({ state: 'visible', timeout: 5000 });
    }
    await alice.page.click('[data-testid="mute"]');
    await alice.page.click('[data-testid="camera"]');
    for (const p of [bob, carol]) {
      await badge(p, 'tile-muted').waitFor({ state: 'hidden', timeout: 5000 });
      await badge(p, 'tile-camera-off').waitFor({ state: 'hidden', timeout: 5000 });
    }
  });

  test('screen sharing replaces the camera for everyone, and back', async () => {
    const [alice, bob, carol] = people;
    const aspect = async (p) => {
      const s = (await mediaStats(p.page))[alice.id];
      return s.frameWidth && s.frameHeight ? s.frameWidth / s.frameHeight : 0;
    };
    // The camera is 320x240 (4:3); Chromium's fake screen is 16:9.
    for (const p of [bob, carol]) assert.ok(Math.abs((await aspect(p)) - 4 / 3) < 0.05, `${p.name} decodes Alice's camera`);
    await alice.page.click('[data-testid="screen"]');
    await alice.page.waitForSelector('[data-testid="screen"][aria-pressed="true"]');
    for (const p of [bob, carol]) {
      await p.page.waitForSelector(`[data-testid="tile"][data-peer-id="${alice.id}"][data-screen="true"]`, { timeout: 5000 });
      await until(async () => Math.abs((await aspect(p)) - 16 / 9) < 0.05, { what: `${p.name} to decode Alice's screen (16:9)`, describe: () => aspect(p) });
    }
    await alice.page.click('[data-testid="screen"]');
    for (const p of [bob, carol]) {
      await p.page.waitForSelector(`[data-testid="tile"][data-peer-id="${alice.id}"][data-screen="false"]`, { timeout: 5000 });
      await until(async () => Math.abs((await aspect(p)) - 4 / 3) < 0.05, { what: `${p.name} to decode Alice's camera again`, describe: () => aspect(p) });
    }
  });

  test('screenshot of the call: a named tile per participant, each video playing', async (t) => {
    const [alice] = people;
    const tiles = () =>
      alice.page.evaluate(() =>
        [...document.querySelectorAll('[data-testid="tile"]')].map((tile) => {
          const video = tile.querySelector('video');
          const label = tile.querySelector('.name');
          const r = video.getBoundingClientRect();
          return {
            name: tile.dataset.name,
            label: label.textContent,
            labelShown: label.checkVisibility(),
            videoShown: video.checkVisibility(),
            width: video.videoWidth,
            height: video.videoHeight,
            paused: video.paused,
            time: video.currentTime,
            rect: { x: Math.round(r.x), y: Math.round(r.y), width: Math.round(r.width), height: Math.round(r.height) },
          };
        }),
      );
    const before = await tiles();
    assert.deepEqual(before.map((x) => x.name).sort(), people.map((p) => p.name).sort(), 'one tile per participant');
    for (const x of before) {
      assert.ok(x.labelShown && x.label.startsWith(x.name), `${x.name}'s tile shows the name: ${JSON.stringify(x)}`);
      assert.ok(x.videoShown && x.width > 0 && x.height > 0 && !x.paused, `${x.name}'s tile shows a playing video: ${JSON.stringify(x)}`);
    }
    let now;
    await until(
      async () => {
        now = await tiles();
        return before.every((b) => now.find((x) => x.name === b.name)?.time > b.time);
      },
      { timeout: 5000, what: "every tile's video currentTime to advance", describe: () => JSON.stringify({ before, now }) },
    );

    const file = screenshotPath('call.png');
    // A loaded machine may composite a frame late: take the screenshot
    // again until every tile shows a picture, for up to 10 s.
    const shot = async () => {
      fs.rmSync(file, { force: true });
      const png = await alice.page.screenshot({ path: file });
      assert.ok(fs.existsSync(file) && fs.readFileSync(file).equals(png), `the screenshot was written to ${file}`);
      // The picture, decoded by the browser: its size, and how many
      // colours (of 4,096, four bits a channel) the whole holds, and the
      // middle of each tile's video (clear of the name and the badges in
      // its corners). A uniform image, or a tile without a picture, has one.
      return alice.page.evaluate(
        async ({ base64, rects }) => {
          const bitmap = await createImageBitmap(new Blob([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], { type: 'image/png' }));
          const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
          const ctx = canvas.getContext('2d');
          ctx.drawImage(bitmap, 0, 0);
          const colours = ({ x, y, width, height }) => {
            const { data } = ctx.getImageData(x, y, width, height);
            const seen = new Set();
            for (let i = 0; i < data.length; i += 4) seen.add(((data[i] >> 4) << 8) | ((data[i + 1] >> 4) << 4) | (data[i + 2] >> 4));
            return seen.size;
          };
          return { width: bitmap.width, height: bitmap.height, colours: colours({ x: 0, y: 0, width: bitmap.width, height: bitmap.height }), tiles: rects.map(colours) };
        },
        { base64: png.toString('base64'), rects: now.map(({ rect: r }) => ({ x: Math.round(r.x + r.width / 4), y: Math.round(r.y + r.height / 4), width: Math.round(r.width / 2), height: Math.round(r.height / 2) })) },
      );
    };
    let picture;
    await until(
      async () => {
        picture = await shot();
        return picture.tiles.every((c) => c >= 3) || undefined;
      },
      { timeout: 10000, interval: 500, what: 'a screenshot with a picture in every tile', describe: () => JSON.stringify(picture) },
    ).catch(() => {});
    t.diagnostic(`${file}: ${JSON.stringify(picture)}`);
    assert.deepEqual({ width: picture.width, height: picture.height }, { width: 1280, height: 720 }, 'the viewport');
    assert.ok(picture.colours >= 64, `the screenshot is not uniform: ${picture.colours} colours`);
    now.forEach((x, i) => assert.ok(picture.tiles[i] >= 3, `${x.name}'s video in the screenshot shows a picture: ${picture.tiles[i]} colours in its middle`));
  });

  describe('a hostile WebSocket client, while the call runs', () => {
    let framesBefore;
    before(async () => {
      framesBefore = await framesPerPeer(people);
    });

    test('malformed frames before joining', async () => {
      const [alice] = people;
      const c = await rawClient(server.wsUrl);
      c.send('this is not json');
      await c.expectError('bad-json');
      c.send('[1, 2, 3]');
      await c.expectError('bad-json');
      c.send(JSON.stringify({ no: 'type' }));
      await c.expectError('bad-message');
      c.send(JSON.stringify({ type: 'frobnicate' }));
      await c.expectError('unknown-type');
      c.send(JSON.stringify({ type: 'ping', padding: 'x'.repeat(70000) }));
      await c.expectError('too-large');
      c.send(Buffer.from([1, 2, 3]));
      await c.expectError('bad-message');
      c.send(JSON.stringify({ type: 'offer', to: alice.id, sdp: 'v=0' }));
      await c.expectError('not-joined');
      c.send(JSON.stringify({ type: 'join', version: 1, room: 'not a room!', name: 'Mallory' }));
      await c.expectError('bad-message');
      c.send(JSON.stringify({ type: 'join', version: 1, room: 'elsewhere', name: '\u0007' }));
      await c.expectError('bad-message');
      c.send(JSON.stringify({ type: 'join', version: 1, room: 'elsewhere', name: 'Mallory', resume: 'no-such-session' }));
      await c.expectError('resume-failed');
      c.send(JSON.stringify({ type: 'ping' }));
      assert.equal((await c.next()).type, 'pong', 'the socket still works after all that');
      // The call's room has --max-participants 3 already.
      c.send(JSON.stringify({ type: 'join', version: 1, room: ROOM, name: 'Mallory' }));
      await c.expectError('room-full');
      assert.equal((await c.closed).code, 4403);

      const v = await rawClient(server.wsUrl);
      v.send(JSON.stringify({ type: 'join', version: 2, room: 'elsewhere', name: 'Mallory' }));
      await v.expectError('unsupported-version');
      assert.equal((await v.closed).code, 4400);
    });

    test('refusals that need a session, and the rate limit', async () => {
      const [alice] = people;
      const j = await rawClient(server.wsUrl);
      j.send(JSON.stringify({ type: 'join', version: 1, room: 'elsewhere', name: 'Mallory' }));
      const welcome = await j.next();
      assert.equal(welcome.type, 'welcome', JSON.stringify(welcome));
      j.send(JSON.stringify({ type: 'join', version: 1, room: 'elsewhere', name: 'Mallory' }));
      await j.expectError('already-joined');
      j.send(JSON.stringify({ type: 'offer', to: alice.id, sdp: 'v=0' }));
      await j.expectError('unknown-peer');
      j.send(JSON.stringify({ type: 'candidate', to: welcome.id, candidate: 42 }));
      await j.expectError('bad-message');
      for (let i = 0; i < welcome.limits.burst + 50; i++) j.send(JSON.stringify({ type: 'ping' }));
      await j.expectError('rate-limited', { skip: (m) => m.type === 'pong' });
      // Leave, not just close: a socket that closes without `leave` has its
      // session held for a resume and then counted as a timeout, which the
      // last test asserts no one had. The bucket may still be empty, so
      // leave again until the server closes the socket as `left`.
      let closed;
      j.closed.then((c) => (closed = c));
      const bye = await until(
        () => {
          if (!closed) j.send(JSON.stringify({ type: 'leave' }));
          return closed;
        },
        { what: 'the server to accept leave once the rate limit lets it through', timeout: 5000 },
      );
      assert.deepEqual(bye, { code: 1000, reason: 'left' });
    });

    test('a frame above 1 MiB closes the socket with 1009', async () => {
      const j = await rawClient(server.wsUrl);
      j.send(JSON.stringify({ type: 'ping', padding: 'x'.repeat(1100 * 1024) }));
      assert.equal((await j.closed).code, 1009, 'docs/signaling.md: "Frames above 1 MiB close the socket (code 1009)"');
    });

    test('join tokens, on a second server without --dev', async () => {
      const strict = await startServer({ name: 'mesh-tokens', dev: false, args: ['--mesh'] });
      try {
        const attempt = async (token, room = 'secure') => {
          const t = await rawClient(strict.wsUrl);
          const join = { type: 'join', version: 1, room, name: 'Mallory' };
          if (token !== undefined) join.token = token;
          t.send(JSON.stringify(join));
          const reply = await t.next();
          if (reply.type === 'welcome') t.close();
          return { reply, close: reply.type === 'error' ? (await t.closed).code : null };
        };
        const expect = async (token, code) => {
          const { reply, close } = await attempt(token);
          assert.equal(reply.type, 'error', `token ${String(token).slice(0, 20)}…: ${JSON.stringify(reply)}`);
          assert.equal(reply.code, code, JSON.stringify(reply));
          assert.equal(close, 4401, `close code after ${code}`);
        };
        await expect(undefined, 'token-required');
        await expect('garbage', 'token-invalid');
        await expect(strict.token('secure', { ttl: 0 }), 'token-expired');
        await expect(strict.token('other'), 'token-invalid');
        await expect(server.token('secure'), 'token-invalid'); // signed with another secret
        const ok = await attempt(strict.token('secure', { name: 'Fixed Name' }));
        assert.equal(ok.reply.type, 'welcome', JSON.stringify(ok.reply));
        assert.equal(ok.reply.name, 'Fixed Name', 'the token fixes the display name');

        // The REST API mints tokens for the bearer of the secret only.
        const mint = (auth) =>
          fetch(`http://127.0.0.1:${strict.port}/api/rooms/secure/tokens`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
            body: JSON.stringify({ name: 'Dana', ttl: 60 }),
          });
        assert.equal((await mint(null)).status, 401);
        assert.equal((await mint('wrong-secret-wrong-secret')).status, 401);
        const minted = await mint(strict.secret);
        assert.equal(minted.status, 200);
        const { token, url } = await minted.json();
        assert.match(url, /\/\?room=secure#token=/);
        assert.equal((await attempt(token)).reply.type, 'welcome');

        // The web client shows the refusal, then joins with the link's token.
        const info = await (await fetch(`${strict.url}/api/info`)).json();
        assert.equal(info.dev, false);
        const guest = await openParticipant(browser, strict, { room: 'secure', name: 'Guest' });
        try {
          await guest.page.click('[data-testid="join-button"]');
          await guest.page.locator('#join-error', { hasText: 'token-required' }).waitFor({ timeout: 10000 });
          assert.equal(await guest.page.isVisible('[data-testid="join-button"]'), true, 'back on the join screen');
          await guest.page.goto(url.replace(/^http:\/\/[^/]+/, strict.url));
          await guest.page.fill('[data-testid="join-name"]', 'Ignored');
          await join(guest);
          assert.equal(await guest.page.evaluate(() => window.natter.name), 'Dana', 'the name the token fixes');
        } finally {
          await guest.context.close();
        }
      } finally {
        await strict.stopCleanly('the token server');
      }
    });

    test('nobody in the call noticed: chat reaches everyone, video keeps decoding', async () => {
      const [alice, bob, carol] = people;
      await chat(bob, [alice, carol], 'still here after the attack');
      await until(
        async () => {
          const now = await framesPerPeer(people);
          return Object.keys(framesBefore).every((k) => now[k] > framesBefore[k]) ? now : undefined;
        },
        { what: 'framesDecoded to keep increasing on every connection', timeout: 15000 },
      );
      for (const p of people) assert.equal(await p.page.locator('[data-testid="tile"]').count(), 3, `${p.name}: no tile for the attacker`);
      // The participants' own sockets never dropped in all this time (the
      // heartbeat kept them open; a resume would hide a drop from the page).
      const metrics = await server.metrics();
      assert.equal(metrics.get('natter_signaling_resumes'), 0, 'no participant had to resume');
      assert.equal(metrics.get('natter_signaling_timeouts'), 0, 'no session timed out');
      await until(async () => (await server.metrics()).get('natter_signaling_sockets') === 3, { what: 'only the three participants’ sockets to remain open', timeout: 5000 });
      assert.deepEqual(problemsOf(people), []);
    });
  });
});

/** "viewer→peer" → framesDecoded, for every connection of every participant. */
async function framesPerPeer(people) {
  const out = {};
  for (const p of people) {
    const stats = await mediaStats(p.page);
    for (const [id, s] of Object.entries(stats)) out[`${p.name}→${id}`] = s.framesDecoded;
  }
  return out;
}
