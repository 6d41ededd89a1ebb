// namespace: dual
// Issue 16: a dual-stack network. The namespace has a veth pair with
// 198.18.0.1/24 + 2001:2::1/64 and 198.18.0.2/24 + 2001:2::2/64
// (scripts/lib/namespace.sh). Two participants call through `natter
// serve`; each gathers host candidates of both families on the veth
// addresses, hears the other's of both families, and the call connects
// with video decoding both ways.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, problemsOf, startServer, waitForFramesToGrow, waitForMedia } from './harness.mjs';

const V4 = /^198\.18\.0\.[12]$/;
const V6 = /^2001:2::[12]$/;

/** Per remote peer: the host addresses gathered and heard, and the selected pair's addresses. */
function candidates(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const [id, peer] of window.natter.peers) {
      const report = await peer.pc.getStats();
      const s = { local: [], remote: [], selected: null, connection: peer.pc.connectionState };
      report.forEach((r) => {
        if (r.type === 'local-candidate' && r.candidateType === 'host') s.local.push(r.address);
        if (r.type === 'remote-candidate' && r.candidateType === 'host') s.remote.push(r.address);
        if (r.type === 'transport' && r.selectedCandidatePairId) {
          const pair = report.get(r.selectedCandidatePairId);
          s.selected = `${report.get(pair.localCandidateId).address} ↔ ${report.get(pair.remoteCandidateId).address}`;
        }
      });
      out[id] = s;
    }
    return out;
  });
}

describe('a call on a dual-stack network', () => {
  let server;
  let browser;
  const people = [];

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'dual-stack', args: ['--mesh'] });
    for (const name of ['Alice', 'Bob']) people.push(await openParticipant(browser, server, { room: 'dual', name }));
    for (const p of people) await join(p);
  });

  after(async () => {
    await browser?.close();
    if (server) {
      await server.stopCleanly();
    }
  });

  test('host candidates of both families are gathered and exchanged, and the call connects', async () => {
    const [alice, bob] = people;
    for (const [p, other] of [[alice, bob], [bob, alice]]) {
      await waitForMedia(p, [other], { timeout: 30000 });
      await waitForFramesToGrow(p, [other]);
      const c = (await candidates(p.page))[other.id];
      console.log(`# ${p.name}→${other.name}: gathered ${JSON.stringify(c.local)}, heard ${JSON.stringify(c.remote)}, selected ${c.selected}`);
      assert.equal(c.connection, 'connected', `${p.name}→${other.name}`);
      for (const [side, addresses] of [['gathered', c.local], ['heard', c.remote]]) {
        assert.ok(addresses.some((a) => V4.test(a)), `${p.name} ${side} an IPv4 host candidate on the veth: ${addresses}`);
        assert.ok(addresses.some((a) => V6.test(a)), `${p.name} ${side} an IPv6 host candidate on the veth: ${addresses}`);
      }
    }
    assert.deepEqual(problemsOf(people), []);
  });
});
