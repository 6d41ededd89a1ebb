// Issue 6, acceptance 2: the three-participant call of mesh.test.mjs with
// `relay=1` (iceTransportPolicy 'relay'): every byte goes through the
// TURN server embedded in `natter serve`, with the credentials of
// `welcome.iceServers`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chat, join, launchBrowser, mediaStats, openParticipant, problemsOf, sendAndVerifyFile, startServer, until, waitForMedia } from './harness.mjs';

const FILE_BYTES = 5 * 1024 * 1024;

describe('three participants, relayed through the embedded TURN server', () => {
  let server;
  let browser;
  const people = [];

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'relay' });
    for (const name of ['Alice', 'Bob', 'Carol']) people.push(await openParticipant(browser, server, { room: 'relayed', name, relay: true }));
  });

  after(async () => {
    await browser?.close();
    if (server) {
      const exit = await server.stop();
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `natter serve did not exit cleanly (log: ${server.logPath})`);
    }
  });

  test('video and audio flow, and every selected pair is relay to relay', async () => {
    for (const p of people) await join(p);
    const iceServers = await people[0].page.evaluate(() => window.natter.peers.values().next().value?.pc.getConfiguration().iceServers);
    assert.ok(iceServers?.some((s) => [].concat(s.urls).some((u) => u.startsWith('turn:')) && s.username && s.credential), `TURN with credentials in ${JSON.stringify(iceServers)}`);
    for (const p of people) {
      const others = people.filter((o) => o !== p);
      await waitForMedia(p, others, { timeout: 40000 });
      const stats = await mediaStats(p.page);
      for (const o of others) {
        assert.deepEqual({ local: stats[o.id].local, remote: stats[o.id].remote }, { local: 'relay', remote: 'relay' }, `${p.name}→${o.name} selected pair`);
      }
    }
    assert.deepEqual(problemsOf(people), []);
  });

  test('chat through the relay', async () => {
    for (const p of people) await chat(p, people.filter((o) => o !== p), `relayed hello from ${p.name}`);
  });

  test('a 5 MB file through the relay arrives byte-exact', async () => {
    const [alice, bob, carol] = people;
    await sendAndVerifyFile(bob, [alice, carol], 'relay-5MB.bin', FILE_BYTES);
  });

  test('the TURN server counted the relayed file', async () => {
    // Each recipient's copy went client → relay → relay → client, so both
    // directions carried at least 2 × FILE_BYTES. TURN workers publish
    // their counters once a second: wait for the figures to get there.
    let relayed;
    await until(
      async () => {
        const metrics = await server.metrics();
        relayed = {
          toPeer: metrics.get('natter_turn_relayed_to_peer_bytes_total'),
          toClient: metrics.get('natter_turn_relayed_to_client_bytes_total'),
          allocations: metrics.get('natter_turn_allocations'),
        };
        return relayed.toPeer >= 2 * FILE_BYTES && relayed.toClient >= 2 * FILE_BYTES;
      },
      { timeout: 5000, what: 'TURN counters of two relayed copies', describe: () => JSON.stringify(relayed) },
    );
    // How each participant reaches the TURN server (udp or tcp).
    const protocols = [];
    for (const p of people) {
      protocols.push(
        ...(await p.page.evaluate(async () => {
          const out = [];
          for (const peer of window.natter.peers.values()) {
            const report = await peer.pc.getStats();
            report.forEach((s) => {
              if (s.type === 'transport' && s.selectedCandidatePairId) {
                out.push(report.get(report.get(s.selectedCandidatePairId).localCandidateId).relayProtocol);
              }
            });
          }
          return out;
        })),
      );
    }
    console.log(`# TURN: ${JSON.stringify(relayed)}, client legs: ${protocols.join(' ')}`);
    // One allocation per participant and peer connection: 3 × 2.
    assert.ok(relayed.allocations >= 6, `live allocations: ${relayed.allocations}`);
  });
});
