// Chromium hides its host address behind a `.local` name (RFC 8828) as
// it does for any page without camera permission; natter-io resolves it
// with a multicast DNS query and connects. Run by scripts/test-peer in a
// network namespace with `lo` and a veth pair 198.18.0.1/24 (Chromium's
// default route) and 198.18.0.2/24 (natter's host address).
// namespace: veth

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, openPage, startEcho, until } from './harness.mjs';

const CHROMIUM_ADDRESS = '198.18.0.1';
const NATTER_ADDRESS = '198.18.0.2';

describe("natter-io resolves Chromium's mDNS host candidates", () => {
  let echo, browser, page, connected;

  before(async () => {
    echo = await startEcho({ name: 'mdns', addresses: [NATTER_ADDRESS] });
    browser = await launchBrowser({ mdns: true });
    ({ page } = await openPage(browser, echo, 'mdns'));
  });

  after(async () => {
    await browser?.close();
    await echo?.stop();
  });

  test("Chromium's offer has only .local host candidates (the environment this test needs)", async (t) => {
    connected = await page.evaluate(() => window.t.connect());
    const candidates = (connected.offer ?? '').split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
    t.diagnostic(`Chromium's candidates: ${JSON.stringify(candidates)}`);
    assert.ok(candidates.length > 0, `Chromium gathered candidates (needs a default route in the namespace, scripts/test-peer makes one); ${connected.error ?? ''}`);
    assert.ok(
      candidates.every((c) => / [0-9a-f-]+\.local \d+ typ host/.test(c)),
      'every candidate of the offer is an mDNS name (Chromium hides its addresses without media permission)',
    );
  });

  test('natter resolves the name with mDNS and the channel opens', async (t) => {
    assert.ok(connected, 'needs the offer of the first test');
    if (connected.error) {
      assert.fail(`${connected.error}\n--- natter's answer ---\n${connected.answer ?? '(none)'}\n--- echo log (tail) ---\n${echo.log().slice(-4000)}`);
    }
    // natter gives a name up after 3 s (natter_io::mdns::GIVE_UP).
    const resolved = await until(() => /mDNS name (resolved|did not resolve).*/.exec(echo.log()), {
      timeout: 5000,
      what: "natter's mDNS query to resolve or give up",
    });
    t.diagnostic(`echo log: ${resolved?.[0] ?? '(no resolution logged)'}`);
    assert.match(resolved[0], /resolved/, "natter's log says the .local name resolved over mDNS");
    assert.match(resolved[0], new RegExp(`ip=${CHROMIUM_ADDRESS.replaceAll('.', '\\.')}`), `the name resolved to Chromium's address ${CHROMIUM_ADDRESS}`);
    const status = await until(async () => (await echo.status())[0]?.selected_pair && (await echo.status())[0], { timeout: 10000, what: 'natter to select a pair' });
    t.diagnostic(`natter's selected pair: ${JSON.stringify(status.selected_pair)}`);
    // Chromium without adapter enumeration binds its socket to the any
    // address and only names the default-route address (198.18.0.1); its
    // checks to natter's 198.18.0.2 leave with the source address the
    // kernel picks (198.18.0.2 itself), so natter may well pair with
    // that peer-reflexive address: the port is what identifies the socket.
    const port = / ([0-9a-f-]+\.local) (\d+) typ host/.exec(connected.offer)[2];
    assert.match(status.selected_pair.remote, new RegExp(` ${port} typ `), `natter's selected pair reaches the socket of Chromium's .local candidate (port ${port})`);
  });

  test('a message echoes over the connection', async () => {
    assert.ok(connected && !connected.error, 'needs the connection of the second test');
    const result = await page.evaluate(() => window.t.burst('echo', [5, 70000], { seed: 3 }));
    assert.equal(result.count, 2, 'both messages came back');
    assert.equal(result.mismatchCount, 0, `the echoes match what was sent: ${JSON.stringify(result.mismatches)}`);
  });
});
