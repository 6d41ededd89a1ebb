// namespace: lo
// DTLS failures that are reported (issue 16), against headless Chromium
// and `natter echo`. (a) The page POSTs its offer with one hex
// digit of its a=fingerprint changed: natter refuses Chromium's
// certificate, sends a fatal bad_certificate alert (RFC 5246 §7.2, RFC
// 8122 §5) and says why in /status, and Chromium's DTLS transport fails
// within seconds because of the alert, not a timeout (ICE stays up);
// natter as DTLS client and as DTLS server. (b) The page changes the
// fingerprint of natter's answer before applying it: Chromium refuses
// natter's certificate and sends its alert, and natter reports the alert
// it received and fails as promptly. Run by scripts/test-peer inside a
// network namespace with only `lo`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, openPage, startEcho, until } from './harness.mjs';

/**
 * How soon after Chromium applied the answer a side must see DTLS fail.
 * On loopback the handshake takes tens of milliseconds; without an alert
 * the side that is not told keeps retransmitting and only gives up on a
 * timeout or an ICE consent failure, tens of seconds later.
 */
const PROMPT_MS = 3000;

/** Installed in the page as `window.f`. */
function failureHelpers() {
  const within = (ms, what, promise) =>
    Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))]);
  /** The sdp with the first hex digit of its sha-256 fingerprint changed. */
  const flip = (sdp) => sdp.replace(/^(a=fingerprint:sha-256 )([0-9A-Fa-f])/m, (_, prefix, digit) => prefix + (digit === '0' ? '1' : '0'));
  const fingerprint = (sdp) => /^a=fingerprint:sha-256 (\S+)/m.exec(sdp)?.[1];

  window.f = {
    /**
     * Offers a data channel, POSTs the offer (with its fingerprint
     * changed when `mungeOffer`), applies the answer (changed when
     * `mungeAnswer`) and waits up to `waitMs` for the DTLS transport or
     * the connection to fail. Returns the times (ms after
     * setRemoteDescription) of every state change and whether it failed.
     */
    async offerAndFail({ mungeOffer, mungeAnswer, waitMs }) {
      const out = { stage: 'offer', seen: [] };
      try {
        const pc = (window.pc = new RTCPeerConnection());
        pc.createDataChannel('never');
        await pc.setLocalDescription(await pc.createOffer());
        out.stage = 'gathering';
        await within(10000, 'ICE gathering to complete', new Promise((resolve) => {
          if (pc.iceGatheringState === 'complete') resolve();
          pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        }));
        const sdp = pc.localDescription.sdp;
        out.chromiumFingerprint = fingerprint(sdp);
        const posted = { type: 'offer', sdp: mungeOffer ? flip(sdp) : sdp };
        out.postedFingerprint = fingerprint(posted.sdp);
        out.stage = 'POST /offer';
        const res = await fetch('/offer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(posted) });
        if (!res.ok) throw new Error(`POST /offer: ${res.status} ${await res.text()}`);
        const answer = await res.json();
        out.natterFingerprint = fingerprint(answer.sdp);
        if (mungeAnswer) answer.sdp = flip(answer.sdp);
        out.appliedFingerprint = fingerprint(answer.sdp);
        out.stage = 'setRemoteDescription(answer)';
        const t0 = performance.now();
        const mark = (what) => out.seen.push({ what, ms: Math.round(performance.now() - t0) });
        let done;
        const failed = new Promise((resolve) => (done = resolve));
        pc.addEventListener('iceconnectionstatechange', () => mark(`ice ${pc.iceConnectionState}`));
        pc.addEventListener('connectionstatechange', () => {
          mark(`connection ${pc.connectionState}`);
          if (pc.connectionState === 'failed') done();
        });
        await pc.setRemoteDescription(answer);
        const dtls = pc.sctp.transport;
        dtls.addEventListener('statechange', () => {
          mark(`dtls ${dtls.state}`);
          if (dtls.state === 'failed') done();
        });
        dtls.addEventListener('error', (e) => mark(`dtls error: ${e.error?.errorDetail} ${e.error?.message}`));
        out.stage = `the DTLS transport to fail (${waitMs} ms)`;
        out.failed = await within(waitMs, 'DTLS to fail', failed).then(() => true, () => false);
        out.failedMs = Math.round(performance.now() - t0);
        // Chromium may announce the failed connection before its DTLS
        // transport's own statechange; give that a moment to arrive.
        if (out.failed && dtls.state !== 'failed') {
          await within(1000, "the DTLS transport's failed state", new Promise((resolve) => {
            dtls.addEventListener('statechange', () => dtls.state === 'failed' && resolve());
          })).catch(() => {});
        }
        out.dtlsState = dtls.state;
        out.connectionState = pc.connectionState;
        out.iceConnectionState = pc.iceConnectionState;
        out.stage = 'done';
      } catch (e) {
        out.error = `${out.stage}: ${e.name}: ${e.message}`;
      }
      return out;
    },
  };
}

/** Milliseconds from natter's ICE connecting to its DTLS failing, from the echo log's timestamps. */
function natterFailedAfterIce(log) {
  const at = (re) => Date.parse(re.exec(log)?.[1]);
  const ms = at(/^(\S+) .*DTLS failed/m) - at(/^(\S+) .*ICE connection state id=1 state=Connected/m);
  assert.ok(Number.isFinite(ms), 'the echo log has both events');
  return ms;
}

/**
 * The one connection of the echo server's /status, once its DTLS failed
 * and its connection state went to failed (the echo server then closes
 * it, so /status says closed, and the log keeps the failed).
 */
async function natterFailure(echo, timeout) {
  return until(
    async () => {
      const [c] = await echo.status();
      return c?.dtls?.state === 'Failed' && /connection state id=1 state=failed/.test(echo.log()) && c;
    },
    { timeout, interval: 20, what: "natter's connection to fail", describe: async () => JSON.stringify(await echo.status()) },
  );
}

describe('DTLS failures with headless Chromium are reported, and the alert ends the handshake', () => {
  let browser;
  const echoes = [];

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    for (const echo of echoes) {
      const stopped = await echo.stop();
      console.log(`natter echo exited with ${JSON.stringify(stopped)}; log: ${echo.logPath}`);
    }
  });

  /** A fresh echo server and page, the page's offer run, and natter's failed connection. */
  async function run(name, args, munge) {
    const echo = await startEcho({ name, args });
    echoes.push(echo);
    const { page, context } = await openPage(browser, echo, name, failureHelpers);
    const chromium = await page.evaluate((o) => window.f.offerAndFail(o), { ...munge, waitMs: PROMPT_MS });
    await context.close();
    const tail = () => echo.log().slice(-3000);
    assert.ok(!chromium.error, `${chromium.error}\n--- echo log (tail) ---\n${tail()}`);
    const natter = await natterFailure(echo, PROMPT_MS).catch((e) => assert.fail(`${e.message}\nChromium: ${JSON.stringify(chromium)}\n--- echo log (tail) ---\n${tail()}`));
    return { echo, chromium, natter };
  }

  for (const [role, args] of [['client', []], ['server', ['--dtls-server']]]) {
    test(`(a) natter as DTLS ${role} refuses a certificate that does not match the offer's fingerprint, sends bad_certificate, and Chromium fails at once`, async (t) => {
      const { echo, chromium, natter } = await run(`dtls-failure-natter-${role}`, args, { mungeOffer: true });
      t.diagnostic(`Chromium: ${JSON.stringify(chromium.seen)}`);
      t.diagnostic(`natter: ${JSON.stringify(natter.dtls)}`);
      assert.notEqual(chromium.postedFingerprint, chromium.chromiumFingerprint, 'the page changed its fingerprint');

      // natter's reason names Chromium's real certificate and the
      // fingerprint it was told to expect.
      assert.equal(natter.dtls.role, role === 'client' ? 'Client' : 'Server');
      assert.match(natter.dtls.error, /does not match the remote description's fingerprint/);
      assert.ok(natter.dtls.error.includes(chromium.chromiumFingerprint.toUpperCase()), `names Chromium's certificate: ${natter.dtls.error}`);
      assert.ok(natter.dtls.error.includes(chromium.postedFingerprint.toUpperCase()), `names the offered fingerprint: ${natter.dtls.error}`);
      assert.equal(natter.dtls.sent_alert, 'bad_certificate (42)');
      assert.deepEqual(natter.errors, [`dtls: ${natter.dtls.error}`]);
      assert.match(echo.log(), /WARN.*DTLS failed.*does not match the remote description's fingerprint.*bad_certificate/);

      // Chromium's DTLS failed promptly, with ICE still up: the alert,
      // not a handshake timeout or a consent failure, ended it.
      assert.ok(chromium.failed, `Chromium's DTLS did not fail within ${PROMPT_MS} ms: ${JSON.stringify(chromium)}`);
      assert.equal(chromium.dtlsState, 'failed', JSON.stringify(chromium));
      assert.ok(['connected', 'completed'].includes(chromium.iceConnectionState), `ICE was ${chromium.iceConnectionState}`);
      t.diagnostic(`Chromium's DTLS failed ${chromium.failedMs} ms after it applied natter's answer`);
    });
  }

  for (const [role, args] of [['client', []], ['server', ['--dtls-server']]]) {
    test(`(b) Chromium refuses natter's certificate (natter as DTLS ${role}) and natter reports the alert it received, at once`, async (t) => {
      const { echo, chromium, natter } = await run(`dtls-failure-chromium-refuses-natter-${role}`, args, { mungeAnswer: true });
      t.diagnostic(`Chromium: ${JSON.stringify(chromium.seen)}`);
      t.diagnostic(`natter: ${JSON.stringify(natter.dtls)}`);
      assert.notEqual(chromium.appliedFingerprint, chromium.natterFingerprint, 'the page changed the answer\'s fingerprint');
      assert.ok(chromium.failed, `Chromium refused natter's certificate within ${PROMPT_MS} ms: ${JSON.stringify(chromium)}`);
      assert.equal(chromium.dtlsState, 'failed', JSON.stringify(chromium));

      // natter failed because of Chromium's alert, which it names:
      // BoringSSL answers a certificate its verify callback (libwebrtc's
      // fingerprint check) refused with certificate_unknown (46).
      assert.equal(natter.dtls.role, role === 'client' ? 'Client' : 'Server');
      assert.match(natter.dtls.error, /^peer sent fatal DTLS alert 46 \(certificate_unknown\)/);
      assert.equal(natter.dtls.sent_alert, null, 'natter sent no alert of its own');
      assert.deepEqual(natter.errors, [`dtls: ${natter.dtls.error}`]);
      const ms = natterFailedAfterIce(echo.log());
      t.diagnostic(`natter's DTLS failed ${ms} ms after its ICE connected`);
      assert.ok(ms < PROMPT_MS, `natter failed ${ms} ms after ICE connected`);
    });
  }
});
