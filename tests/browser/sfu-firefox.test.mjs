// namespace: veth
// Issue 13: Firefox ESR (puppeteer-core over WebDriver BiDi) and
// Chromium in one SFU room of `natter serve`. Firefox's offer is not
// Chromium's: its simulcast (RFC 8853) and RID lines, header extension
// ids, payload types and RTX differ, and the SFU must read it. Each page
// decodes the other's video at the size of a layer the other sends (its
// own outbound-rtp) and plays its audio, through its one connection to
// the server; chat goes both ways.
// Firefox gathers no candidates on `lo` nor without a default route, so
// this runs in scripts/test-browser's veth namespace (shared TESTING.md),
// and it does not pair its veth candidate with a server on 127.0.0.1
// (ICE fails): the server listens on the veth's 198.18.0.1, as a real
// one would on its network's address, and the pages load it through a
// proxy on 127.0.0.1 (a secure context, for the camera).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chat, join, launchBrowser, launchFirefox, openParticipant, problemsOf, startServer } from './harness.mjs';
import { eachReceivesTheOther, loopbackOrigin, sfuArgs, sfuStats } from './sfu-clients.mjs';

/** The camera the pages open: Chromium sends two simulcast layers of it (160x90 and 320x180). */
const CAMERA = { width: '640', height: '360', fps: '15' };

describe('Firefox and Chromium in one SFU room', () => {
  let server, origin, chromium, firefox, chrome, fox;

  before(async () => {
    [chromium, firefox] = await Promise.all([launchBrowser(), launchFirefox()]);
    server = await startServer({ name: 'sfu-firefox', host: '198.18.0.1', maxParticipants: 2, args: sfuArgs() });
    origin = await loopbackOrigin(server);
    chrome = await openParticipant(chromium, origin.server, { room: 'sfu-firefox', name: 'Chromium', query: CAMERA });
    fox = await openParticipant(firefox, origin.server, { room: 'sfu-firefox', name: 'Firefox', query: CAMERA });
  });

  after(async () => {
    await Promise.all([chromium?.close(), firefox?.close()]);
    origin?.close();
    await server?.stopCleanly();
  });

  test('each decodes the other’s video at a layer’s size and plays its audio, through the server', async (t) => {
    await join(chrome);
    await join(fox);
    await eachReceivesTheOther(t, fox, chrome, { timeout: 40000 });
    const offer = await fox.page.evaluate(() => window.natter.sfu.pc.localDescription.sdp);
    t.diagnostic(`Firefox's simulcast: ${JSON.stringify(offer.match(/^a=(simulcast|rid):.*$/gm))}`);
    t.diagnostic(`Firefox sends: ${JSON.stringify((await sfuStats(fox)).sent)}`);
    assert.deepEqual(problemsOf([chrome, fox]), []);
  });

  test('chat goes both ways', async () => {
    await chat(fox, [chrome], 'hello from Firefox');
    await chat(chrome, [fox], 'hello from Chromium');
  });
});
