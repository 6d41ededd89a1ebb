// namespace: dual
// Issue 13: an SFU room of `natter serve` on IPv6 loopback. The server
// listens on [::1] only, so its SFU socket and the host candidate it
// trickles are [::1]; two Chromium pages load http://[::1]:PORT, signal
// over ws://[::1]:PORT/ws, and each decodes the other's video at the
// size of a layer the other sends and plays its audio through the
// server, over a selected pair whose both ends are IPv6.
//
// Then a dual-stack network: the server on the veth's IPv6 address
// 2001:2::1, the pages (loaded through a proxy on 127.0.0.1, a secure
// context) gathering host candidates of both families; they connect to
// the server's IPv6 candidate from an IPv6 one.
//
// The namespace is dual-stack (scripts/lib/namespace.sh): Chromium
// gathers IPv6 candidates only when the host has an IPv6 default route
// (ipv6.test.mjs).

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, problemsOf, startServer } from './harness.mjs';
import { eachReceivesTheOther, loopbackOrigin } from './sfu-clients.mjs';

/** The camera the pages open: Chromium sends two simulcast layers of it (160x90 and 320x180). */
const CAMERA = { width: '640', height: '360', fps: '15' };

/**
 * Joins Alice and Bob to an SFU room of the server `origin` loads the
 * pages from, checks that each decodes the other over a pair of IPv6
 * host candidates whose remote end is `serverAddress`, and closes them.
 */
async function call(t, browser, origin, serverAddress) {
  const people = [];
  for (const name of ['Alice', 'Bob']) people.push(await openParticipant(browser, origin, { room: 'sfu-six', name, query: CAMERA }));
  for (const p of people) await join(p);
  for (const [p, , got] of await eachReceivesTheOther(t, ...people)) {
    for (const side of ['local', 'remote']) {
      assert.equal(got.pair[side].type, 'host', `${p.name}'s ${side} candidate type`);
      assert.ok(net.isIPv6(got.pair[side].address), `${p.name}'s ${side} candidate address ${got.pair[side].address} is IPv6`);
    }
    assert.equal(got.pair.remote.address, serverAddress, `${p.name} reaches the server's SFU socket on ${serverAddress}`);
  }
  assert.deepEqual(problemsOf(people), []);
  for (const p of people) await p.context.close();
}

describe('SFU rooms over IPv6', () => {
  let browser, origin;
  const servers = [];

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    origin?.close();
    for (const server of servers) await server.stopCleanly();
  });

  test('on IPv6 loopback: each page decodes the other through the server over [::1]', async (t) => {
    const server = await startServer({ name: 'sfu-ipv6', host: '::1', maxParticipants: 2 });
    servers.push(server);
    assert.match(server.url, /^http:\/\/\[::1\]:\d+$/);
    await call(t, browser, server, '::1');
  });

  test('on a dual-stack network: each page decodes the other through the server over 2001:2::1', async (t) => {
    const server = await startServer({ name: 'sfu-dual-stack', host: '2001:2::1', maxParticipants: 2 });
    servers.push(server);
    origin = await loopbackOrigin(server);
    await call(t, browser, origin.server, '2001:2::1');
  });
});
