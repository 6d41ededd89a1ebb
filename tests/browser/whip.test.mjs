// namespace: lo
// Issue 14, acceptances 3 and 5: WHIP (RFC 9725) and WHEP into
// `natter serve`'s SFU with Chromium as both clients. A page with a
// small WHIP client (tests/browser/whip-page.js: fetch and
// RTCPeerConnection, nothing else) publishes its fake camera (VP8) and
// microphone into a room with a Bearer token, trickling its candidates
// with PATCH; a second page plays the room over WHEP and decodes the
// video and receives the audio; a web-client participant of the room
// sees the publisher's tile and decodes its video through its SFU
// slots. A wrong token gets 401 and creates nothing; the WHIP page
// restarts ICE with a PATCH (RFC 9725 §4.3.2: 200, the server's new
// credentials, a new ETag; the old one 412), its transport selects a new
// pair with its new ufrag, and the WHEP page keeps decoding; DELETE ends both sessions,
// the web client's tile of the publisher goes, and every count of
// /metrics returns to zero. Clients that vanish without a DELETE (a WHIP
// and a WHEP page, and a web client, whose renderers crash) are removed
// too: the SFU's ICE-lite connections fail once the pages' consent checks
// have stopped for the consent timeout (5 s here, so that a test does not
// wait RFC 7675's 30 s; every test of the file runs with it, so live
// sessions are seen to survive it), and the counts return to zero.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, problemsOf, startServer, until } from './harness.mjs';
import { counts, untilPlaying, untilStats, whipPage } from './whip-client.mjs';

const ROOM = 'stage';
/** `--sfu-consent-timeout-ms`: Chromium's consent checks come every 2.5 s or less. */
const CONSENT_MS = 5000;

/** The SFU worker's participant connections (`natter_sfu_connections`). */
async function sfuConnections(server) {
  return (await server.metrics()).get('natter_sfu_connections');
}

describe('WHIP and WHEP with Chromium', () => {
  let server;
  let browser;
  let publisher;
  let published;
  let player;
  let viewer;

  before(async () => {
    browser = await launchBrowser();
    // Not --dev: WHIP and WHEP need a token.
    server = await startServer({ name: 'whip', dev: false, args: ['--sfu-consent-timeout-ms', String(CONSENT_MS)] });
  });

  after(async () => {
    await browser?.close();
    if (server) await server.stopCleanly();
  });

  test('a wrong token gets 401 and creates nothing', async () => {
    const page = await whipPage(browser, server);
    const wrong = server.token('elsewhere', { name: 'camera' });
    for (const token of [wrong, 'not-a-token', null]) {
      const r = await page.publish(`${server.url}/whip/${ROOM}`, token);
      assert.equal(r.status, 401, `token ${token}: ${r.text}`);
      assert.match(r.challenge ?? '', /^Bearer/, 'RFC 6750 §3: a WWW-Authenticate challenge');
      assert.equal(r.location, null);
    }
    assert.deepEqual(await counts(server), { whip: 0, whep: 0, pending: 0, signaling: 0 });
    await page.context.close();
  });

  test('a WHIP page publishes, a WHEP page plays it, a web client sees it', async (t) => {
    publisher = await whipPage(browser, server);
    published = await publisher.publish(`${server.url}/whip/${ROOM}`, server.token(ROOM, { name: 'camera' }));
    assert.equal(published.status, 201, published.text);
    assert.match(published.location, new RegExp(`^/whip/${ROOM}/[0-9a-f]{32}$`));
    assert.match(published.etag, /^".+"$/);
    assert.match(published.link ?? '', /<stun:[^>]+>; rel="ice-server"/, 'RFC 9725 §4.6: the STUN server as a Link header');
    assert.match(published.link ?? '', /<turn:[^>]+>; rel="ice-server"; username="[^"]+"; credential="[^"]+"/, 'RFC 9725 §4.6: TURN with credentials');
    const sending = await untilStats(publisher, 'the WHIP page to connect and send video and audio', (s) => s.state === 'connected' && s.videoPacketsSent > 0 && s.audioPacketsSent > 0);
    t.diagnostic(`WHIP page: ${JSON.stringify(sending)}`);

    player = await whipPage(browser, server);
    const played = await player.play(`${server.url}/whep/${ROOM}`, server.token(ROOM, { name: 'screen' }));
    assert.equal(played.status, 201, played.text);
    assert.match(played.location, new RegExp(`^/whep/${ROOM}/[0-9a-f]{32}$`));
    const grown = await untilPlaying(player);
    assert.equal(grown.frameWidth, 320, 'the publisher’s 320x240 camera');
    t.diagnostic(`WHEP page: ${JSON.stringify(grown)}`);

    // Trickled candidates were taken (204) on both sessions.
    for (const [who, client] of [['WHIP', publisher], ['WHEP', player]]) {
      const log = await client.page.evaluate(() => window.whip.log);
      const patches = log.filter((e) => e.method === 'PATCH');
      assert.ok(patches.length > 0, `${who} page trickled nothing: ${JSON.stringify(log)}`);
      assert.ok(patches.every((e) => e.status === 204), `${who} PATCHes: ${JSON.stringify(patches)}`);
    }

    // A web-client participant of the room decodes the publisher through its SFU slots.
    viewer = await openParticipant(browser, server, { room: ROOM, name: 'Viewer', token: server.token(ROOM, { name: 'Viewer' }) });
    await join(viewer);
    const cameraId = await viewer.page
      .waitForFunction(() => document.querySelector('[data-testid="tile"][data-name="camera"]')?.dataset.peerId || null, null, { timeout: 15000 })
      .then((h) => h.jsonValue());
    const decoded = () =>
      viewer.page.evaluate(async (id) => {
        const sfu = window.natter.sfu;
        let frames = 0;
        (await sfu.pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'video' && sfu.slots.get(r.mid)?.peer === id) frames += r.framesDecoded || 0;
        });
        return frames;
      }, cameraId);
    await until(async () => (await decoded()) > 10, { timeout: 30000, what: 'the web client to decode the WHIP publisher’s video', describe: decoded });
    await viewer.page.waitForFunction((id) => document.querySelector(`[data-testid="tile"][data-peer-id="${id}"] video`)?.videoWidth > 0, cameraId, { timeout: 10000 });
    assert.deepEqual(problemsOf([publisher, player, viewer].map((c) => ({ name: c.name ?? 'whip page', problems: c.problems }))), []);
  });

  test('the WHIP page restarts ICE with a PATCH and the WHEP page keeps decoding', async (t) => {
    const before = await publisher.stats();
    assert.ok(before.pair, `a selected pair before the restart: ${JSON.stringify(before)}`);
    const restarted = await publisher.page.evaluate(() => window.whip.restartIce());
    assert.equal(restarted.status, 200, restarted.text);
    assert.match(restarted.etag ?? '', /^".+"$/, 'a new ETag');
    assert.notEqual(restarted.etag, published.etag, 'the ETag changes with the ICE session');
    assert.ok(restarted.serverUfrag, `the server's new ice-ufrag in the fragment: ${restarted.text}`);
    assert.notEqual(restarted.serverUfrag, published.text.match(/^a=ice-ufrag:(.*)$/m)[1].trim(), 'new server credentials');
    assert.match(restarted.text, /^a=ice-pwd:/m);
    assert.match(restarted.text, /^a=end-of-candidates/m);
    // The page's transport is checked with its new ufrag, on a new pair.
    const after = await untilStats(publisher, 'the WHIP page to select a pair with its new credentials', (s) => s.state === 'connected' && s.ufrag === restarted.ufrag && s.pair !== before.pair);
    t.diagnostic(`WHIP page pair ${before.pair} (ufrag ${before.ufrag}) -> ${after.pair} (ufrag ${after.ufrag})`);
    // The old ETag is stale now (412); the trickled candidates of the new offer were taken.
    const stale = await publisher.page.evaluate(
      async ({ location, etag }) => (await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': etag }, body: 'a=end-of-candidates\r\n' })).status,
      { location: new URL(published.location, server.url).href, etag: published.etag },
    );
    assert.equal(stale, 412, 'the ETag before the restart');
    const patches = (await publisher.page.evaluate(() => window.whip.log)).filter((e) => e.method === 'PATCH');
    assert.ok(patches.every((e) => e.status === 204 || e.status === 200), JSON.stringify(patches));
    // Media goes on over the new pair: the WHEP page decodes more frames.
    const playing = await player.stats();
    await untilStats(player, 'the WHEP page to keep decoding after the restart', (s) => s.framesDecoded >= playing.framesDecoded + 30);
  });

  test('DELETE ends both sessions: the publisher leaves the room and every count returns to zero', async () => {
    // Signaling counts the WHIP and WHEP participants beside the web client.
    assert.deepEqual(await counts(server), { whip: 1, whep: 1, pending: 0, signaling: 3 });
    assert.equal(await publisher.page.evaluate(() => window.whip.end()), 200);
    await viewer.page.waitForSelector('[data-testid="tile"][data-name="camera"]', { state: 'detached', timeout: 10000 });
    assert.equal(await player.page.evaluate(() => window.whip.end()), 200);
    // A second DELETE of the same session finds nothing.
    const again = await player.page.evaluate(() => window.whip.end());
    assert.equal(again, 404);
    await viewer.page.click('[data-testid="leave"]');
    await until(async () => JSON.stringify(await counts(server)) === JSON.stringify({ whip: 0, whep: 0, pending: 0, signaling: 0 }), {
      timeout: 10000,
      what: 'every count to return to zero',
      describe: () => counts(server).then(JSON.stringify),
    });
  });

  test('clients that vanish without DELETE or leave are removed once their consent expires', async (t) => {
    const zero = { whip: 0, whep: 0, pending: 0, signaling: 0 };
    const gone = await whipPage(browser, server);
    const published = await gone.publish(`${server.url}/whip/${ROOM}`, server.token(ROOM, { name: 'camera' }));
    assert.equal(published.status, 201, published.text);
    await untilStats(gone, 'the WHIP page to send video', (s) => s.state === 'connected' && s.videoPacketsSent > 0);
    const watcher = await whipPage(browser, server);
    const played = await watcher.play(`${server.url}/whep/${ROOM}`, server.token(ROOM, { name: 'screen' }));
    assert.equal(played.status, 201, played.text);
    await untilStats(watcher, 'the WHEP page to decode video', (s) => s.framesDecoded > 0);
    const member = await openParticipant(browser, server, { room: ROOM, name: 'Member', token: server.token(ROOM, { name: 'Member' }) });
    await join(member);
    await member.page.waitForFunction(() => window.natter.sfu?.pc.connectionState === 'connected', null, { timeout: 15000 });
    assert.deepEqual(await counts(server), { whip: 1, whep: 1, pending: 0, signaling: 3 });
    assert.equal(await sfuConnections(server), 3, 'the SFU holds the three connections');
    // Page.crash kills each renderer: no DELETE, no `leave`, no DTLS
    // close_notify; the pages' consent checks and the web client's socket stop.
    const t0 = Date.now();
    for (const client of [gone, watcher, member]) {
      const cdp = await client.context.newCDPSession(client.page);
      cdp.send('Page.crash').catch(() => {});
    }
    await until(async () => JSON.stringify(await counts(server)) === JSON.stringify(zero) && (await sfuConnections(server)) === 0, {
      timeout: CONSENT_MS + 20000,
      what: 'every count to return to zero after the crashes',
      describe: async () => `${JSON.stringify(await counts(server))}, SFU connections ${await sfuConnections(server)}`,
    });
    t.diagnostic(`vanished clients removed after ${Date.now() - t0} ms (consent timeout ${CONSENT_MS} ms)`);
    for (const client of [gone, watcher, member]) await client.context.close().catch(() => {});
  });
});
