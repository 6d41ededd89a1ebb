// namespace: veth
// Headless Firefox ESR (Debian's firefox-esr, driven by puppeteer-core
// over WebDriver BiDi) and `natter echo`, both offer/answer
// roles and both DTLS roles (issue 17). Firefox offers its fake camera
// and microphone and a data channel; natter answers (as DTLS client, its
// default, and with --dtls-server), reflects both tracks, which Firefox
// decodes (getStats), and echoes 1,000 mixed messages byte-exact and in
// order, an unordered maxRetransmits-0 channel, and closes from either
// side. Then natter's `echo --client` offers to a Firefox echo server
// (offerer.mjs) in both DTLS roles, with VP8 and Opus that Firefox sends
// back. Firefox gathers no candidates on `lo` nor without a default
// route, so this runs in scripts/test-peer's veth namespace: Firefox's
// default route is on 198.18.0.1, natter's host address is 198.18.0.2.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { callHelpers, natterSide, streams } from './call.mjs';
import { launchFirefox, mixedSizes, openPage, startEcho, until } from './harness.mjs';
import { offererTests } from './offerer.mjs';

const FIREFOX_ADDRESS = '198.18.0.1';
const NATTER_ADDRESS = '198.18.0.2';

/** natter's channel `label` in the echo's /status. */
async function natterChannel(echo, label) {
  return Object.values((await natterSide(echo)).channels).find((c) => c.label === label);
}

/** Waits until natter's channel `label` is closed, and returns it. */
function natterClosed(echo, label) {
  return until(
    async () => {
      const c = await natterChannel(echo, label);
      return c?.state === 'closed' && c;
    },
    { timeout: 10000, what: `natter to see '${label}' closed`, describe: async () => JSON.stringify(await natterChannel(echo, label)) },
  );
}

describe('Firefox offers, natter answers', () => {
  let browser;

  before(async () => {
    browser = await launchFirefox();
  });

  after(async () => {
    await browser?.close();
  });

  // Firefox offers a=setup:actpass; natter answers active (DTLS client)
  // unless told --dtls-server.
  for (const [args, natterRole, firefoxRole, setup] of [
    [[], 'client', 'server', 'active'],
    [['--dtls-server'], 'server', 'client', 'passive'],
  ]) {
    describe(`natter as DTLS ${natterRole}`, () => {
      let echo, page, problems, started;

      before(async () => {
        echo = await startEcho({ name: `firefox-${natterRole}`, addresses: [NATTER_ADDRESS], args });
        ({ page, problems } = await openPage(browser, echo, `firefox-${natterRole}`));
        await page.evaluate(callHelpers);
      });

      after(async () => {
        const stopped = await echo?.stop();
        if (stopped) console.log(`natter echo exited with ${JSON.stringify(stopped)}; log: ${echo.logPath}`);
      });

      test("Firefox's camera and microphone come back from natter and Firefox decodes them", async (t) => {
        started = await page.evaluate(() => window.call.start({ audio: true })).catch((e) => {
          throw new Error(`${e.message}\n--- echo log (tail) ---\n${echo.log().slice(-4000)}`);
        });
        const answer = await page.evaluate(() => window.t.pc.remoteDescription.sdp);
        assert.match(answer, new RegExp(`^a=setup:${setup}`, 'm'), `natter answers a=setup:${setup}`);
        assert.match(answer, new RegExp(`^a=candidate:.* ${NATTER_ADDRESS.replaceAll('.', '\\.')} \\d+ typ host`, 'm'), `natter's answer carries its ${NATTER_ADDRESS} host candidate`);
        assert.deepEqual(
          (await page.evaluate(() => window.call.transceivers())).map((x) => `${x.mid} ${x.kind} ${x.currentDirection}`),
          ['0 video sendrecv', '1 audio sendrecv'],
          'video and audio negotiated sendrecv both ways',
        );

        // Decoded frames and samples grow while the call goes on: what
        // natter reflects decodes, not just a first keyframe.
        const video = await page.evaluate(() => window.call.moreVideo('0', 30));
        const audio = await page.evaluate(() => window.call.moreAudio('1'));
        const inbound = await page.evaluate(() => window.call.inbound('video', '0'));
        t.diagnostic(`Firefox decoding natter's reflection: video ${JSON.stringify(video)} ${JSON.stringify(inbound)}, audio ${JSON.stringify({ ...audio, all: undefined })}`);
        assert.equal(`${inbound.frameWidth}x${inbound.frameHeight}`, '320x240', "Firefox decodes its own camera's 320x240 video");
        assert.ok(audio.concealed < audio.samples / 2, `Firefox decoded the microphone natter reflects: ${audio.concealed} of ${audio.samples} samples were concealment`);

        const natter = await natterSide(echo);
        t.diagnostic(`natter: ${JSON.stringify({ dtls: natter.dtls, pair: natter.selected_pair, media: natter.media })}`);
        const { senders: vp8, receivers } = streams(natter, 'Vp8');
        const { senders: opus } = streams(natter, 'Opus');
        assert.deepEqual(receivers.find((r) => r.frame_size)?.frame_size, [320, 240], "natter received Firefox's 320x240 video");
        assert.ok(receivers.length === 2 && receivers.every((r) => r.frames_received > 0), `natter received frames on both of Firefox's tracks: ${JSON.stringify(receivers)}`);
        assert.ok(vp8[0]?.frames_sent > 0 && opus[0]?.frames_sent > 0, `natter sent VP8 and Opus frames back: ${JSON.stringify(natter.media.senders)}`);
        assert.equal(natter.media.dropped.srtp_failed, 0, 'natter unprotected every SRTP packet');
        assert.equal(natter.media_errors, 0, 'natter sent back every frame it tried to');
        assert.equal(natter.dtls.role.toLowerCase(), natterRole, `natter is the DTLS ${natterRole}`);
        const stats = await page.evaluate(() => window.t.stats());
        assert.equal(stats.dtlsState, 'connected', "Firefox's DTLS transport is connected");
        assert.equal(stats.dtlsRole, firefoxRole, `Firefox is the DTLS ${firefoxRole}`);
        assert.match(stats.pair?.remote ?? '', new RegExp(`${NATTER_ADDRESS.replaceAll('.', '\\.')}:`), `Firefox's selected pair reaches natter on ${NATTER_ADDRESS}`);
      });

      test('1,000 messages of 1 B to 256 KiB, strings and ArrayBuffers, echo byte-exact and in order', async (t) => {
        assert.ok(started, 'needs the call of the first test');
        const all = mixedSizes();
        const result = await page.evaluate(({ all }) => window.t.burst('echo', all, { seed: 11 }), { all });
        t.diagnostic(`${result.count} echoes of ${(result.bytes / 1048576).toFixed(1)} MiB each way in ${result.ms.toFixed(0)} ms`);
        assert.equal(result.count, 1000, 'every message came back');
        assert.equal(result.mismatchCount, 0, `each echo has the type, length and SHA-256 of the message sent at its position: ${JSON.stringify(result.mismatches)}`);
        assert.equal((await natterChannel(echo, 'echo')).messages_echoed, 1000, "natter counted 1,000 echoes on 'echo'");
        assert.deepEqual((await natterSide(echo)).errors, [], 'natter reported no echo errors');
      });

      test('an unordered maxRetransmits-0 channel opens on natter with those options and echoes', async () => {
        assert.ok(started, 'needs the call of the first test');
        const opened = await page.evaluate(() => window.t.open('lossy', { ordered: false, maxRetransmits: 0 }));
        const natter = await until(() => natterChannel(echo, 'lossy'), { timeout: 10000, what: "natter to list channel 'lossy'" });
        assert.deepEqual(
          { ordered: natter.ordered, max_retransmits: natter.max_retransmits, stream_id: natter.stream_id },
          { ordered: false, max_retransmits: 0, stream_id: opened.id },
          "natter sees Firefox's DCEP options and stream id",
        );
        const pingPong = await page.evaluate(() => window.t.pingPong('lossy', 50));
        assert.deepEqual(pingPong.mismatches, [], '50 messages sent one at a time each came back (type, length, SHA-256) within 2 s');
        assert.equal((await natterChannel(echo, 'lossy')).messages_echoed, 50, "natter counted 50 echoes on 'lossy'");
      });

      test("closing 'lossy' in Firefox closes it on natter; natter closes 'echo' on 'close-me'", async () => {
        assert.ok(started, 'needs the call of the first test');
        assert.equal(await page.evaluate(() => window.t.close('lossy')), 'closed', "Firefox's 'lossy' reached 'closed'");
        assert.equal((await natterClosed(echo, 'lossy')).closed_by, 'peer', 'natter saw Firefox close it (stream reset)');
        assert.equal(await page.evaluate(() => window.t.closedByPeer('echo', 'close-me')), 'closed', "Firefox's 'echo' reached 'closed'");
        assert.equal((await natterClosed(echo, 'echo')).closed_by, 'natter', 'natter closed it');
        assert.deepEqual(problems, [], 'the page raised no errors');
      });
    });
  }
});

offererTests({ name: 'firefox-offerer', peer: 'Firefox', launch: launchFirefox, natterAddress: NATTER_ADDRESS, browserAddress: FIREFOX_ADDRESS, media: true });
