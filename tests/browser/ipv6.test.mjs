// namespace: dual
// Issue 16: `natter serve` on IPv6 loopback. The server listens on
// [::1] only; Chromium loads http://[::1]:PORT, signals over
// ws://[::1]:PORT/ws, and two participants call over IPv6 host
// candidates. Then a relay-only call whose TURN client legs run over
// IPv6 (turn:[::1]:PORT).
//
// The namespace is dual-stack (scripts/lib/namespace.sh): Chromium
// gathers IPv6 candidates only when the host has an IPv6 default route;
// in a namespace with only `lo` it gathers 127.0.0.1 alone, never ::1.
//
// Chromium (156) sends no REQUESTED-ADDRESS-FAMILY in its Allocate, and
// a TURN server then allocates IPv4 (RFC 8656 §7.2), so Chromium's
// relays are IPv4 whatever family it reaches the server over; the relay
// test therefore gives the server an IPv4 relay address. IPv6 relayed
// addresses asked for with REQUESTED-ADDRESS-FAMILY are proven by
// crates/natter-server/tests/turn_families.rs.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, problemsOf, startServer, waitForFramesToGrow, waitForMedia } from './harness.mjs';

/** Per remote peer: the selected pair's local and remote candidates (type, address, protocol, TURN URL). */
function selectedPairs(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const [id, peer] of window.natter.peers) {
      const report = await peer.pc.getStats();
      report.forEach((r) => {
        if (r.type !== 'transport' || !r.selectedCandidatePairId) return;
        const pair = report.get(r.selectedCandidatePairId);
        const pick = (c) => ({ type: c.candidateType, address: c.address, protocol: c.protocol, ...(c.url ? { url: c.url } : {}) });
        out[id] = { local: pick(report.get(pair.localCandidateId)), remote: pick(report.get(pair.remoteCandidateId)) };
      });
    }
    return out;
  });
}

describe('natter serve on IPv6 loopback', () => {
  let browser;
  const servers = [];

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    for (const server of servers) {
      await server.stopCleanly();
    }
  });

  test('the page, signaling and the call run over [::1] with IPv6 host candidates', async () => {
    const server = await startServer({ name: 'ipv6', host: '::1', args: ['--mesh'] });
    servers.push(server);
    assert.match(server.url, /^http:\/\/\[::1\]:\d+$/);
    const people = [];
    const sockets = new Map();
    for (const name of ['Alice', 'Bob']) {
      const p = await openParticipant(browser, server, { room: 'six', name });
      sockets.set(p, []);
      p.page.on('websocket', (ws) => sockets.get(p).push(ws.url()));
      people.push(p);
    }
    for (const p of people) await join(p);
    const [alice, bob] = people;
    for (const [p, other] of [[alice, bob], [bob, alice]]) {
      assert.ok(p.page.url().startsWith(`${server.url}/`), `${p.name} is at ${p.page.url()}`);
      assert.deepEqual(sockets.get(p), [server.wsUrl], `${p.name}'s WebSockets`);
      await waitForMedia(p, [other], { timeout: 30000 });
      await waitForFramesToGrow(p, [other]);
      const pair = (await selectedPairs(p.page))[other.id];
      console.log(`# ${p.name}→${other.name} selected pair: ${JSON.stringify(pair)}`);
      for (const side of ['local', 'remote']) {
        assert.equal(pair[side].type, 'host', `${p.name}→${other.name} ${side} candidate type`);
        assert.ok(net.isIPv6(pair[side].address), `${p.name}→${other.name} ${side} candidate address ${pair[side].address} is IPv6`);
      }
    }
    assert.deepEqual(problemsOf(people), []);
    for (const p of people) await p.context.close();
  });

  test('relay-only, reaching TURN over IPv6: every selected pair is relay, from turn:[::1]', async () => {
    const server = await startServer({ name: 'ipv6-relay', host: '::1', args: ['--mesh', '--relay-ip', '127.0.0.1'] });
    servers.push(server);
    const people = [];
    for (const name of ['Alice', 'Bob']) people.push(await openParticipant(browser, server, { room: 'six-relayed', name, relay: true }));
    for (const p of people) await join(p);
    const [alice, bob] = people;
    const turnUrl = new RegExp(`^turn:\\[::1\\]:${server.turnPort}\\?transport=(udp|tcp)$`);
    for (const [p, other] of [[alice, bob], [bob, alice]]) {
      await waitForMedia(p, [other], { timeout: 40000 });
      await waitForFramesToGrow(p, [other]);
      const pair = (await selectedPairs(p.page))[other.id];
      console.log(`# ${p.name}→${other.name} selected pair: ${JSON.stringify(pair)}`);
      assert.equal(pair.local.type, 'relay', `${p.name}→${other.name} local candidate`);
      assert.equal(pair.remote.type, 'relay', `${p.name}→${other.name} remote candidate`);
      assert.match(pair.local.url, turnUrl, `${p.name}'s relay was allocated over IPv6`);
      assert.equal(pair.local.address, '127.0.0.1', `${p.name}'s relayed address (IPv4: no REQUESTED-ADDRESS-FAMILY)`);
    }
    assert.deepEqual(problemsOf(people), []);
    for (const p of people) await p.context.close();
  });
});
