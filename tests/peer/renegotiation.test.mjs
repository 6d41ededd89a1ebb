// namespace: lo
// Renegotiation and ICE restart mid-call between headless Chromium and
// `natter echo` (issue 16). One call carries video, later
// audio, and data channels; each exchange changes one thing and the
// test checks that the change took effect on both sides while the rest
// of the call carried on:
//
// - Chromium offers: an ICE restart, a track added, a second data
//   channel, a transceiver's direction changed and changed back, a
//   track removed (`POST /connections/ID/offer`).
// - natter offers: the same, natter asking for each change
//   (`POST /connections/ID/negotiate`, the answer to `/answer`).
//
// Run by scripts/test-peer inside a network namespace with only `lo`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { callHelpers, echoes, natterSide, streams } from './call.mjs';
import { launchBrowser, openPage, startEcho } from './harness.mjs';

/** Runs one call against a fresh echo server; `script(page, echo)` does the renegotiations. */
function call(name, script) {
  describe(name, () => {
    let echo, browser, page, problems;

    before(async () => {
      echo = await startEcho({ name, addresses: ['127.0.0.1'] });
      browser = await launchBrowser();
      ({ page, problems } = await openPage(browser, echo, name));
      await page.evaluate(callHelpers);
    });

    after(async () => {
      await browser?.close();
      await echo?.stop();
    });

    test('renegotiates mid-call', async (t) => {
      try {
        await script(page, echo, t);
      } catch (e) {
        const status = await echo.status().catch((x) => x.message);
        e.message += `\n--- natter's /status ---\n${JSON.stringify(status)}\n--- echo log (tail) ---\n${echo.log().slice(-3000)}`;
        throw e;
      }
      assert.deepEqual(problems, [], 'no page errors');
    });
  });
}

call('Chromium offers', async (page, echo, t) => {
  const started = await page.evaluate(() => window.call.start());
  assert.match(started.location, /^\/connections\/\d+$/);
  await page.evaluate(() => window.call.moreVideo('0'));
  await echoes(page, 'echo');

  // ICE restart (RFC 8445 §9): new credentials on both sides, the same channel and track go on.
  const restart = await page.evaluate(() => window.call.chromiumOffers(() => {}, { iceRestart: true }));
  t.diagnostic(`ICE restart: ${JSON.stringify(restart)}`);
  assert.notEqual(restart.after.local, restart.before.local, "Chromium's ufrag is new");
  assert.notEqual(restart.after.remote, restart.before.remote, "natter answered a restart with a new ufrag of its own");
  await page.evaluate(() => window.call.iceConnected());
  await echoes(page, 'echo');
  await page.evaluate(() => window.call.moreVideo('0'));
  let natter = await natterSide(echo);
  assert.equal(natter.ice_state, 'connected', 'natter is connected again');
  assert.equal(Object.values(natter.channels).find((c) => c.label === 'echo')?.state, 'open', "natter's 'echo' channel stayed open");

  // A track added: the microphone on a new section; natter reflects it.
  await page.evaluate(() => window.call.chromiumOffers((pc) => pc.addTrack(window.call.stream.getAudioTracks()[0], window.call.stream)));
  let transceivers = await page.evaluate(() => window.call.transceivers());
  const audio = transceivers.find((x) => x.kind === 'audio');
  assert.equal(audio?.currentDirection, 'sendrecv', `the audio section is negotiated sendrecv: ${JSON.stringify(transceivers)}`);
  const heard = await page.evaluate((mid) => window.call.moreAudio(mid), audio.mid);
  assert.ok(heard.concealed < heard.samples / 2, `reflected audio is decoded, not concealed: ${JSON.stringify(heard)}`);

  // A second data channel, on the association already there.
  await page.evaluate(() => window.t.open('second'));
  await echoes(page, 'second');

  // A direction changed: Chromium stops receiving video, natter stops sending it; then back.
  await page.evaluate(() => window.call.chromiumOffers((pc) => { pc.getTransceivers().find((x) => x.mid === '0').direction = 'sendonly'; }));
  transceivers = await page.evaluate(() => window.call.transceivers());
  assert.equal(transceivers.find((x) => x.mid === '0').currentDirection, 'sendonly');
  natter = await natterSide(echo);
  assert.equal(streams(natter, 'Vp8').senders.length, 0, `natter no longer sends video: ${JSON.stringify(natter.media.senders)}`);
  await page.evaluate(() => window.call.chromiumOffers((pc) => { pc.getTransceivers().find((x) => x.mid === '0').direction = 'sendrecv'; }));
  await page.evaluate(() => window.call.moreVideo('0'));

  // A track removed: Chromium's microphone; the section becomes recvonly, natter stops receiving audio.
  const audioBefore = streams(await natterSide(echo), 'Opus');
  assert.equal(audioBefore.senders.length, 1, 'natter sends audio before the removal');
  await page.evaluate(() => window.call.chromiumOffers((pc) => pc.removeTrack(pc.getSenders().find((s) => s.track?.kind === 'audio'))));
  transceivers = await page.evaluate(() => window.call.transceivers());
  assert.equal(transceivers.find((x) => x.kind === 'audio').currentDirection, 'recvonly');
  natter = await natterSide(echo);
  assert.equal(natter.media.receivers.length, 1, `natter receives only video now: ${JSON.stringify(natter.media.receivers)}`);

  // Through all of it: the first channel, the video, and natter's count of exchanges.
  await echoes(page, 'echo');
  await page.evaluate(() => window.call.moreVideo('0'));
  natter = await natterSide(echo);
  assert.equal(natter.renegotiations, 5, 'natter answered five new offers');
  assert.equal(natter.state, 'connected');
});

call('natter offers', async (page, echo, t) => {
  await page.evaluate(() => window.call.start());
  await page.evaluate(() => window.call.moreVideo('0'));

  // ICE restart asked by natter.
  const restart = await page.evaluate(() => window.call.natterOffers({ restartIce: true }));
  t.diagnostic(`ICE restart: ${JSON.stringify(restart)}`);
  assert.notEqual(restart.after.remote, restart.before.remote, "natter's offer carries a new ufrag");
  assert.notEqual(restart.after.local, restart.before.local, "Chromium answered a restart with a new ufrag");
  await page.evaluate(() => window.call.iceConnected());
  await echoes(page, 'echo');
  await page.evaluate(() => window.call.moreVideo('0'));

  // A track natter adds: Chromium answers with its microphone, natter reflects it.
  await page.evaluate(() => window.call.natterOffers({ addTrack: 'audio' }));
  let transceivers = await page.evaluate(() => window.call.transceivers());
  const audio = transceivers.find((x) => x.kind === 'audio');
  assert.equal(audio?.currentDirection, 'sendrecv', `natter's audio section is negotiated sendrecv: ${JSON.stringify(transceivers)}`);
  const heard = await page.evaluate((mid) => window.call.moreAudio(mid), audio.mid);
  assert.ok(heard.concealed < heard.samples / 2, `reflected audio is decoded, not concealed: ${JSON.stringify(heard)}`);

  // A data channel natter opens.
  await page.evaluate(() => window.call.natterOffers({ dataChannel: 'from-natter' }));
  assert.equal(await page.evaluate(() => window.call.natterChannel('from-natter')), 'open');
  await echoes(page, 'from-natter');

  // natter changes the video's direction to recvonly, then back.
  await page.evaluate(() => window.call.natterOffers({ direction: { mid: '0', direction: 'recvonly' } }));
  transceivers = await page.evaluate(() => window.call.transceivers());
  assert.equal(transceivers.find((x) => x.mid === '0').currentDirection, 'sendonly', 'Chromium only sends video now');
  let natter = await natterSide(echo);
  assert.equal(streams(natter, 'Vp8').senders.length, 0, 'natter no longer sends video');
  await page.evaluate(() => window.call.natterOffers({ direction: { mid: '0', direction: 'sendrecv' } }));
  await page.evaluate(() => window.call.moreVideo('0'));

  // natter removes its audio track: Chromium's section becomes sendonly.
  await page.evaluate((mid) => window.call.natterOffers({ removeTrack: mid }), audio.mid);
  transceivers = await page.evaluate(() => window.call.transceivers());
  assert.equal(transceivers.find((x) => x.kind === 'audio').currentDirection, 'sendonly');
  natter = await natterSide(echo);
  assert.equal(streams(natter, 'Opus').senders.length, 0, 'natter no longer sends audio');

  await echoes(page, 'echo');
  await page.evaluate(() => window.call.moreVideo('0'));
  natter = await natterSide(echo);
  assert.equal(natter.renegotiations, 6, "Chromium answered natter's six offers");
  assert.equal(natter.state, 'connected');
});
