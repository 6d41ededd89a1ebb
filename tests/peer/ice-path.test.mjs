// namespace: veth
// An ICE restart after the network path changed (issue 16): natter's
// `natter echo` has host candidates on two addresses of the namespace's
// veth pair; mid-call the address of the selected pair disappears
// (`ip addr del`), the page restarts ICE, and the call goes on over
// natter's other address with the same data channel and video. Run by scripts/test-peer inside a network namespace with a
// veth pair (198.18.0.1/24 and 198.18.0.2/24); the test adds
// 198.18.0.3 and 198.18.0.4 for natter, as root or through `sudo -n`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { callHelpers, echoes, natterSide } from './call.mjs';
import { launchBrowser, openPage, startEcho } from './harness.mjs';

const NATTER_ADDRESSES = ['198.18.0.3', '198.18.0.4'];

/** The address of a candidate line (`candidate:F 1 udp PRIO ADDRESS PORT typ ...`). */
const addressOf = (candidate) => /^candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ /.exec(candidate ?? '')?.[1];

/** `ip ARGS` in this namespace, as root or through `sudo -n`. */
function ip(...args) {
  const argv = process.getuid() === 0 ? ['ip', args] : ['sudo', ['-n', 'ip', ...args]];
  try {
    execFileSync(argv[0], argv[1], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`ip ${args.join(' ')} failed (run as root or with passwordless sudo): ${e.stderr}`);
  }
}

describe('ICE restart after the selected path disappears', () => {
  let echo, browser, page, problems;

  before(async () => {
    for (const address of NATTER_ADDRESSES) ip('addr', 'add', `${address}/24`, 'dev', 'v1');
    echo = await startEcho({ name: 'ice-path', addresses: NATTER_ADDRESSES });
    browser = await launchBrowser();
    ({ page, problems } = await openPage(browser, echo, 'ice-path'));
    await page.evaluate(callHelpers);
  });

  after(async () => {
    await browser?.close();
    await echo?.stop();
  });

  test("the call moves to natter's other address, channel and video intact", async (t) => {
    try {
      await page.evaluate(() => window.call.start());
      await page.evaluate(() => window.call.moreVideo('0'));
      await echoes(page, 'echo');
      const before = (await natterSide(echo)).selected_pair;
      t.diagnostic(`selected pair before: ${JSON.stringify(before)}`);
      const gone = addressOf(before?.local);
      assert.ok(NATTER_ADDRESSES.includes(gone), `natter's selected pair uses one of ${NATTER_ADDRESSES}: ${JSON.stringify(before)}`);

      // The address goes away, and the page restarts ICE as an
      // application does on a network change.
      ip('addr', 'del', `${gone}/24`, 'dev', 'v1');
      const restart = await page.evaluate(() => window.call.chromiumOffers(() => {}, { iceRestart: true }));
      assert.notEqual(restart.after.remote, restart.before.remote, 'natter answered with new credentials');
      const [kept] = NATTER_ADDRESSES.filter((a) => a !== gone);
      const selected = await page.evaluate((kept) => window.call.selectedRemote(kept), kept);
      t.diagnostic(`Chromium's selected pair after the restart: ${JSON.stringify(selected)}`);
      assert.equal(await page.evaluate(() => window.call.echoOnce('echo', 15000)), 'ping echo');
      await echoes(page, 'echo');
      await page.evaluate(() => window.call.moreVideo('0'));

      const natter = await natterSide(echo);
      t.diagnostic(`selected pair after: ${JSON.stringify(natter.selected_pair)}`);
      assert.equal(addressOf(natter.selected_pair?.local), kept, `natter's selected pair moved to ${kept}: ${JSON.stringify(natter.selected_pair)}`);
      assert.equal(Object.values(natter.channels).find((c) => c.label === 'echo')?.state, 'open', "natter's 'echo' channel stayed open");
      assert.equal(natter.state, 'connected');
    } catch (e) {
      e.message += `\n--- echo log (tail) ---\n${echo.log().slice(-4000)}`;
      throw e;
    }
    assert.deepEqual(problems, [], 'no page errors');
  });
});
