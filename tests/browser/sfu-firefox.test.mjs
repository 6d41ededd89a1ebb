// namespace: veth
// Issue 13: Firefox ESR (puppeteer-core over WebDriver BiDi) and
// Chromium in one SFU room of `natter serve`. Firefox's offer is not
// Chromium's: its simulcast (RFC 8853) and RID lines, header extension
// ids, payload types and RTX differ, and the SFU must read it. Each page
// decodes the other's video at the size of a layer the other sends (its
// own outbound-rtp) and plays its audio, through its one connection to
// the server; chat goes both ways. Then a second Firefox page that
// publishes its camera as one plain stream (no sendEncodings: no RIDs,
// no simulcast): Chromium decodes it at the size it sends.
// Firefox gathers no candidates on `lo` nor without a default route, so
// this runs in scripts/test-browser's veth namespace (shared TESTING.md),
// and it does not pair its veth candidate with a server on 127.0.0.1
// (ICE fails): the server listens on the veth's 198.18.0.1, as a real
// one would on its network's address, and the pages load it through a
// proxy on 127.0.0.1 (a secure context, for the camera).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chat, join, launchBrowser, launchFirefox, openParticipant, problemsOf, startServer } from './harness.mjs';
import { eachReceivesTheOther, loopbackOrigin, sfuStats } from './sfu-clients.mjs';

/** The camera the pages open: Chromium sends two simulcast layers of it (160x90 and 320x180). */
const CAMERA = { width: '640', height: '360', fps: '15' };

/** Runs in a page before its scripts: video goes out as one stream, without the client's simulcast sendEncodings. */
function oneLayer() {
  const native = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (trackOrKind, init = {}) {
    const { sendEncodings, ...rest } = init;
    return native.call(this, trackOrKind, rest);
  };
}

/** The simulcast and RID lines of `p`'s offer to the server. */
const simulcastLines = (p) => p.page.evaluate(() => window.natter.sfu.pc.localDescription.sdp.match(/^a=(simulcast|rid):.*$/gm) ?? []);

describe('Firefox and Chromium in one SFU room', () => {
  let server, origin, chromium, firefox, chrome, fox;

  before(async () => {
    [chromium, firefox] = await Promise.all([launchBrowser(), launchFirefox()]);
    server = await startServer({ name: 'sfu-firefox', host: '198.18.0.1', maxParticipants: 3 });
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
    const lines = await simulcastLines(fox);
    t.diagnostic(`Firefox's simulcast: ${JSON.stringify(lines)}; it sends ${JSON.stringify((await sfuStats(fox)).sent)}`);
    assert.ok(lines.includes('a=simulcast:send q;h;f'), "Firefox's offer was simulcast");
    assert.deepEqual(problemsOf([chrome, fox]), []);
  });

  test('chat goes both ways', async () => {
    await chat(fox, [chrome], 'hello from Firefox');
    await chat(chrome, [fox], 'hello from Chromium');
  });

  test('a Firefox page publishing one layer (no simulcast): Chromium decodes it, and it decodes Chromium', async (t) => {
    const plain = await openParticipant(firefox, origin.server, { room: 'sfu-firefox', name: 'Firefox one layer', query: CAMERA, init: oneLayer });
    await join(plain);
    assert.deepEqual(await simulcastLines(plain), [], 'its offer has no simulcast');
    const [[, , got]] = await eachReceivesTheOther(t, chrome, plain, { timeout: 40000 });
    // Firefox scales its one stream to the bandwidth (320x180 here), so the size is the one it sends.
    assert.equal(got.media[plain.name].sent.length, 1, `it sends one stream: ${got.media[plain.name].sent}`);
    assert.deepEqual(problemsOf([chrome, fox, plain]), []);
  });
});
