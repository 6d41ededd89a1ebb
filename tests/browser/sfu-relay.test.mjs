// Issue 13: a page forced to relay (`relay=1`: iceTransportPolicy
// 'relay') in an SFU room of `natter serve`. Its only candidates are
// relayed ones from the embedded TURN server, so its media
// reaches the SFU's ICE-lite socket through TURN and comes back the
// same way: the SFU must take checks and media from the TURN server's
// relayed address (on loopback here). A second, direct page is the
// other end: each decodes the other's video and plays its audio, and the
// relayed page's selected pair is relay (local) to the server's host
// candidate (remote); chat goes both ways; the TURN server counts the
// relayed bytes.
//
// The server's SFU socket is on 127.0.0.1 here, which the TURN server
// refuses as a peer (not globally reachable, RFC 6890) except as the
// server's own media endpoint: natter serve binds the SFU's socket first
// and tells TURN its exact address and port (PeerFilter::with_own_peers).
// No --allowed-peer-ip: the test runs as a default server would, with the
// SFU on port 30000, outside both the relay port range (49152-65535),
// which TURN accepts as other allocations, and the kernel's ephemeral
// range, so no other socket takes it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chat, join, launchBrowser, openParticipant, problemsOf, startServer, until } from './harness.mjs';
import { eachReceivesTheOther } from './sfu-clients.mjs';

/** The camera the pages open: Chromium sends two simulcast layers of it (160x90 and 320x180). */
const CAMERA = { width: '640', height: '360', fps: '15' };

describe('a relay-only page in an SFU room', () => {
  let server, browser, relayed, direct;

  before(async () => {
    browser = await launchBrowser();
    server = await startServer({ name: 'sfu-relay', maxParticipants: 2, args: ['--sfu-port', '30000'] });
    relayed = await openParticipant(browser, server, { room: 'sfu-relayed', name: 'Relayed', relay: true, query: CAMERA });
    direct = await openParticipant(browser, server, { room: 'sfu-relayed', name: 'Direct', query: CAMERA });
  });

  after(async () => {
    await browser?.close();
    await server?.stopCleanly();
  });

  test('media goes through TURN both ways: each decodes the other, the relayed page’s pair is relay to the server’s host', async (t) => {
    await join(relayed);
    await join(direct);
    const config = await relayed.page.evaluate(() => window.natter.sfu.pc.getConfiguration());
    assert.equal(config.iceTransportPolicy, 'relay');
    for (const [p, , got] of await eachReceivesTheOther(t, relayed, direct, { timeout: 40000 })) {
      if (p === relayed) {
        assert.deepEqual(
          { local: got.pair.local.type, remote: got.pair.remote.type },
          { local: 'relay', remote: 'host' },
          `${p.name}'s selected pair: its relayed candidate to the server's host candidate`,
        );
        assert.ok(['udp', 'tcp'].includes(got.pair.local.relayProtocol), `${p.name}'s relay was allocated over ${got.pair.local.relayProtocol}`);
      } else {
        assert.equal(got.pair.local.type, 'host', `${p.name}'s selected pair is direct`);
      }
    }
    assert.deepEqual(problemsOf([relayed, direct]), []);
  });

  test('chat goes both ways', async () => {
    await chat(relayed, [direct], 'relayed hello');
    await chat(direct, [relayed], 'direct hello');
  });

  test('the TURN server counted the relayed media', async () => {
    // The TURN workers publish their counters once a second.
    let relayedBytes;
    await until(
      async () => {
        const m = await server.metrics();
        relayedBytes = { toPeer: m.get('natter_turn_relayed_to_peer_bytes_total'), toClient: m.get('natter_turn_relayed_to_client_bytes_total') };
        return relayedBytes.toPeer > 100000 && relayedBytes.toClient > 100000;
      },
      { timeout: 5000, what: 'TURN counters of relayed media both ways', describe: () => JSON.stringify(relayedBytes) },
    );
    console.log(`# TURN: ${JSON.stringify(relayedBytes)}`);
  });
});
