// namespace: lo
// Issue 13, acceptance 3: a page whose SFU offer goes down with its
// signaling socket. In bench/sfu-50 (six pages on a loaded core) a
// page's WebSocket dropped seconds after the page wrote its offer to it;
// the session was resumed, but the server had never read the offer,
// replays only what it sent itself, and the page waited for an answer
// for ever: its SFU connection stayed `new`. A resumed page now sends an
// offer that is still unanswered again (web/sfu.js `resumed`).
//
// Here Alice's page closes its socket (code 4000) instead of writing its
// first offer, so the server never sees it. The page reconnects, resumes
// its session (same id, `natter_signaling_resumes` counts it), offers
// again, and Alice and Bob each decode the other's video and play its
// audio through the SFU.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, problemsOf, startServer, until } from './harness.mjs';
import { eachReceivesTheOther } from './sfu-clients.mjs';

/** The camera the pages open: Chromium sends two simulcast layers of it (160x90 and 320x180). */
const CAMERA = { width: '640', height: '360', fps: '15' };

/**
 * Runs in Alice's page before its scripts: the first `offer` written to
 * a WebSocket is not sent; its socket closes instead, as a socket that
 * died with the offer in it would. `window.droppedOffers` counts it.
 */
function dropFirstOffer() {
  const send = WebSocket.prototype.send;
  window.droppedOffers = 0;
  WebSocket.prototype.send = function (data) {
    if (window.droppedOffers === 0 && typeof data === 'string' && JSON.parse(data).type === 'offer') {
      window.droppedOffers += 1;
      this.close(4000, 'test: the offer went down with its socket');
      return;
    }
    send.call(this, data);
  };
}

describe('an SFU offer lost with its signaling socket', () => {
  let server, browser, alice, bob;

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'sfu-resume', maxParticipants: 2 });
    alice = await openParticipant(browser, server, { room: 'sfu-resume', name: 'Alice', query: CAMERA, init: dropFirstOffer });
    bob = await openParticipant(browser, server, { room: 'sfu-resume', name: 'Bob', query: CAMERA });
  });

  after(async () => {
    await browser?.close();
    await server?.stopCleanly();
  });

  test('the page resumes its session, offers again, and both decode each other through the SFU', async (t) => {
    const resumes = async () => (await server.metrics()).get('natter_signaling_resumes') ?? 0;
    const resumedBefore = await resumes();
    const id = await join(alice);
    await join(bob);
    await until(() => alice.page.evaluate(() => window.droppedOffers), { what: "Alice's first offer to go down with its socket" });
    await until(async () => (await resumes()) > resumedBefore, { what: "Alice's session to be resumed", timeout: 15000 });
    assert.equal(await alice.page.evaluate(() => window.natter.id), id, 'Alice keeps her id: the session was resumed, not joined afresh');
    await eachReceivesTheOther(t, alice, bob, { timeout: 40000 });
    assert.equal(await alice.page.evaluate(() => window.droppedOffers), 1, 'only the first offer was dropped');
    assert.deepEqual(problemsOf([alice, bob]), []);
  });
});
