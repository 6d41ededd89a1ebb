// Issue 6, acceptance 3: a participant leaves with the button and joins
// again; another one's page crashes (no `leave`, its socket just dies)
// and the others' grids drop it once the server's resume window is over.
// Also the client's reconnection: a signaling connection that drops comes
// back with `resume` (same id, messages of the gap delivered), and after a
// server restart everyone joins afresh (`resume-failed`).
// The room goes through the SFU (natter serve's default): media from
// each participant is read from the page's one connection to the server,
// per receive slot, by the peer the slot carries now (harness.mjs's
// mediaStats), so a slot that carried the old Carol and carries the new
// one counts only what came after.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { forgiveOutage, join, launchBrowser, openParticipant, problemsOf, startServer, tcpProxy, until, waitForFramesToGrow, waitForMedia } from './harness.mjs';

/** The server's default resume window (docs/signaling.md), given explicitly. */
const RESUME_MS = 5000;
/** Issue 6: a dead participant leaves the others' grids within this. */
const GONE_WITHIN_MS = 10000;

describe('participants leaving, rejoining and crashing', () => {
  let server;
  let browser;
  let alice;
  let bob;
  let carol;
  /** Carol's network: she reaches the server only through it. */
  let proxy;

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'churn', resumeMs: RESUME_MS });
    proxy = await tcpProxy(server);
    alice = await openParticipant(browser, server, { room: 'churn', name: 'Alice' });
    bob = await openParticipant(browser, server, { room: 'churn', name: 'Bob' });
    carol = await openParticipant(browser, proxy.server, { room: 'churn', name: 'Carol' });
    for (const p of [alice, bob, carol]) await join(p);
    for (const p of [alice, bob, carol]) {
      const stats = await waitForMedia(p, [alice, bob, carol].filter((o) => o !== p));
      assert.deepEqual(new Set(Object.values(stats).map((s) => s.via)), new Set(['sfu']), `${p.name}'s media comes through the SFU`);
    }
  });

  after(async () => {
    await browser?.close();
    proxy?.close();
    if (server) {
      await server.stopCleanly();
    }
  });

  const tile = (p, who) => p.page.locator(`[data-testid="tile"][data-name="${who.name}"]`);

  test('leave with the button: the tile goes; join again: it comes back and video decodes', async () => {
    const oldId = carol.id;
    const t0 = Date.now();
    await carol.page.click('[data-testid="leave"]');
    for (const p of [alice, bob]) await tile(p, carol).waitFor({ state: 'detached', timeout: 5000 });
    const goneMs = Date.now() - t0;
    assert.ok(goneMs < 3000, `a leave is seen at once, not after the resume window: ${goneMs} ms`);
    for (const p of [alice, bob]) {
      assert.equal(await p.page.evaluate((id) => window.natter.peers.has(id), oldId), false, `${p.name} dropped the old Carol`);
      // The server frees her slots (`track` with `peer: null`).
      await until(() => p.page.evaluate((id) => ![...window.natter.sfu.slots.values()].some((s) => s.peer === id), oldId), {
        what: `${p.name}'s slots to stop carrying the old Carol`,
        timeout: 5000,
      });
    }
    // Back on the join screen, with the button to rejoin.
    await carol.page.waitForSelector('[data-testid="join-button"]', { state: 'visible' });
    await join(carol);
    assert.notEqual(carol.id, oldId, 'a new session');
    for (const p of [alice, bob]) {
      await tile(p, carol).waitFor({ timeout: 10000 });
      assert.equal(await tile(p, carol).getAttribute('data-peer-id'), carol.id);
      await waitForMedia(p, [carol]);
    }
    await waitForMedia(carol, [alice, bob]);
    for (const p of [alice, bob, carol]) assert.equal(await p.page.locator('[data-testid="tile"]').count(), 3, `${p.name}'s grid`);
  });

  test('a dropped signaling connection resumes: same id, nothing missed, nobody noticed', async () => {
    const metric = async (name) => (await server.metrics()).get(name) ?? 0;
    const resumesBefore = await metric('natter_signaling_resumes');
    // Alice and Bob record every tile that leaves their grids.
    for (const p of [alice, bob]) {
      await p.page.evaluate(() => {
        window.removedTiles = [];
        new MutationObserver((records) => {
          for (const r of records) for (const n of r.removedNodes) if (n.dataset?.testid === 'tile') window.removedTiles.push(n.dataset.name);
        }).observe(document.getElementById('grid'), { childList: true });
      });
    }
    const sockets = await metric('natter_signaling_sockets');
    proxy.cut({ block: true });
    await until(async () => (await metric('natter_signaling_sockets')) < sockets, { what: 'the server to see Carol’s socket close', timeout: 5000 });
    // While Carol is away, Alice mutes: the server holds that for Carol.
    await alice.page.click('[data-testid="mute"]');
    proxy.restore();
    await until(async () => (await metric('natter_signaling_resumes')) > resumesBefore, { what: 'Carol to resume', timeout: RESUME_MS });
    assert.equal(await carol.page.evaluate(() => window.natter.id), carol.id, 'the same participant id');
    // Attempts to reconnect while the proxy refused them are expected.
    forgiveOutage([carol]);
    await carol.page.waitForSelector(`[data-testid="tile"][data-peer-id="${alice.id}"] [data-testid="tile-muted"]:not([hidden])`, { timeout: 5000 });
    // Signaling from Carol works again, and the others never dropped her.
    await carol.page.click('[data-testid="camera"]');
    for (const p of [alice, bob]) {
      await p.page.waitForSelector(`[data-testid="tile"][data-peer-id="${carol.id}"] [data-testid="tile-camera-off"]:not([hidden])`, { timeout: 5000 });
      assert.deepEqual(await p.page.evaluate(() => window.removedTiles), [], `${p.name} never removed a tile`);
    }
    await carol.page.click('[data-testid="camera"]');
    await alice.page.click('[data-testid="mute"]');
    await waitForFramesToGrow(alice, [carol]);
  });

  test('a crashed page leaves the others’ grids within 10 seconds', async () => {
    const timeoutsBefore = (await server.metrics()).get('natter_signaling_timeouts') ?? 0;
    // Page.crash kills the renderer: no pagehide, no `leave`; the browser
    // drops the page's WebSocket with it.
    const cdp = await bob.context.newCDPSession(bob.page);
    const t0 = Date.now();
    cdp.send('Page.crash').catch(() => {});
    const elapsed = {};
    await Promise.all(
      [alice, carol].map(async (p) => {
        await tile(p, bob).waitFor({ state: 'detached', timeout: GONE_WITHIN_MS + 5000 });
        elapsed[p.name] = Date.now() - t0;
      }),
    );
    console.log(`# crashed participant gone after (ms): ${JSON.stringify(elapsed)}`);
    for (const [name, ms] of Object.entries(elapsed)) assert.ok(ms <= GONE_WITHIN_MS, `${name} still showed Bob after ${ms} ms`);
    // It went by timeout, so the socket really died without a leave.
    await until(async () => ((await server.metrics()).get('natter_signaling_timeouts') ?? 0) > timeoutsBefore, { what: 'natter_signaling_timeouts to count the crash', timeout: 2000 });
    await bob.context.close().catch(() => {});
    // The two who are left still see each other.
    await waitForFramesToGrow(alice, [carol]);
    await waitForFramesToGrow(carol, [alice]);
    for (const p of [alice, carol]) assert.equal(await p.page.locator('[data-testid="tile"]').count(), 2, `${p.name}'s grid`);
    assert.deepEqual(problemsOf([alice, carol]), []);
  });

  test('after a server restart everyone joins afresh and the call comes back', async () => {
    const old = { alice: alice.id, carol: carol.id };
    await server.stopCleanly('the first server');
    // Same ports and secret: the clients come back to the same address,
    // find their sessions gone (resume-failed) and join again.
    server = await startServer({ name: 'churn', resumeMs: RESUME_MS, ports: server.ports, secret: server.secret });
    for (const p of [alice, carol]) {
      const before = old[p.name.toLowerCase()];
      p.id = await until(() => p.page.evaluate((before) => window.natter.id !== before && window.natter.id, before), {
        what: `${p.name} to rejoin with a new id`,
        timeout: 20000,
      });
    }
    await waitForMedia(alice, [carol]);
    await waitForMedia(carol, [alice]);
    for (const p of [alice, carol]) {
      assert.equal(await p.page.locator('[data-testid="tile"]').count(), 2, `${p.name}: no tile left over from before the restart`);
      assert.deepEqual([...(await p.page.evaluate(() => [...window.natter.peers.keys()]))], [p === alice ? carol.id : alice.id]);
    }
  });

  test('the join screen asks for a room when the address has none', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${server.url}/`);
      await page.waitForSelector('[data-testid="join-room"]', { state: 'visible' });
      await page.fill('[data-testid="join-name"]', 'Dave');
      await page.fill('[data-testid="join-room"]', 'no spaces allowed');
      await page.click('[data-testid="join-button"]');
      await page.locator('#join-error', { hasText: 'Room names' }).waitFor();
      await page.fill('[data-testid="join-room"]', 'churn');
      await page.waitForFunction(() => document.querySelector('[data-testid="join-camera"]').options.length > 0);
      await page.click('[data-testid="join-button"]');
      const dave = await page.waitForFunction(() => window.natter.id).then((h) => h.jsonValue());
      assert.equal(new URL(page.url()).searchParams.get('room'), 'churn', 'the address now names the room');
      await alice.page.waitForSelector(`[data-testid="tile"][data-peer-id="${dave}"][data-name="Dave"]`, { timeout: 10000 });
    } finally {
      await context.close();
    }
    // Closing the page sends `leave` on pagehide: gone at once, no resume wait.
    await alice.page.waitForSelector('[data-testid="tile"][data-name="Dave"]', { state: 'detached', timeout: 3000 });
  });
});
