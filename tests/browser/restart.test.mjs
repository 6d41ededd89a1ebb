// Issue 16: the signaling server restarts (same ports) while calls are
// being set up or are running, and the web client brings them back.
//
// 1. In the middle of a negotiation: Bob's offer has reached Alice, and
//    Alice's answer is held in her page (a hook on WebSocket.send drops
//    it) so the restart falls exactly between offer and answer, not by
//    timing luck. Once the server is back, both join afresh
//    (`resume-failed`) and the call comes up on new connections.
// 2. With relay-only participants (iceTransportPolicy 'relay'): the
//    restarted server has a new secret, so the TURN credentials handed
//    out before the restart no longer authenticate; the call carries
//    video again only if the clients use the fresh ones of the new
//    `welcome`.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { forgiveOutage, join, launchBrowser, mediaStats, openParticipant, problemsOf, startServer, until, waitForFramesToGrow, waitForMedia } from './harness.mjs';

/**
 * Once the server is back, a client rejoins within this: its reconnect
 * backoff is 250 ms doubling (signaling.js), and the server is down
 * about a second. Much shorter than the heartbeat timeout (three 5 s
 * heartbeats), which would also end in a fresh join, by another path.
 */
const REJOIN_MS = 5000;

/** Runs in the page before the web client: while `window.answerHold.on`, outgoing `answer` messages are dropped and recorded. */
function holdAnswers() {
  const hold = { on: true, dropped: [] };
  window.answerHold = hold;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (hold.on && typeof data === 'string' && data.includes('"answer"')) {
      const message = JSON.parse(data);
      if (message.type === 'answer') {
        hold.dropped.push(message.to);
        return;
      }
    }
    return send.call(this, data);
  };
}

/** Restarts `server` where it was; `secret` replaces its secret when given. */
async function restart(server, { name, secret = server.secret, between } = {}) {
  await server.stopCleanly('the first server');
  await between?.();
  return startServer({ name, ports: server.ports, secret, args: ['--mesh'] });
}

/** Waits until each of `people` has rejoined with a new id (within REJOIN_MS of now) and sees exactly the others. */
async function rejoined(people, oldIds) {
  const back = Date.now();
  const ms = {};
  for (const p of people) {
    p.id = await until(() => p.page.evaluate((old) => window.natter.id !== old && window.natter.id, oldIds.get(p)), {
      what: `${p.name} to rejoin with a new id`,
      timeout: Math.max(0, back + REJOIN_MS - Date.now()),
      interval: 50,
    });
    ms[p.name] = Date.now() - back;
  }
  console.log(`# rejoined after the server was back (ms): ${JSON.stringify(ms)}`);
  console.log(`# signaling sockets refused while the server was down: ${forgiveOutage(people)}`);
  for (const p of people) {
    const others = people.filter((o) => o !== p).map((o) => o.id);
    await until(async () => JSON.stringify(await p.page.evaluate(() => [...window.natter.peers.keys()].sort())) === JSON.stringify(others.sort()), {
      what: `${p.name}'s peers to be exactly ${others}`,
      timeout: 10000,
      describe: () => p.page.evaluate(() => JSON.stringify([...window.natter.peers.keys()])),
    });
  }
}

/** Signaling state of each of `p`'s peer connections, and whether it has a remote description. */
function negotiation(p) {
  return p.page.evaluate(() =>
    Object.fromEntries([...window.natter.peers].map(([id, peer]) => [id, { signaling: peer.pc.signalingState, remote: peer.pc.remoteDescription?.type ?? null, local: peer.pc.localDescription?.type ?? null }])),
  );
}

describe('signaling restarts', () => {
  let browser;
  let server;
  const contexts = [];

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (server) {
      await server.stopCleanly();
    }
  });

  test('a restart between an offer and its answer: the call comes up once the server is back', async () => {
    server = await startServer({ name: 'restart-negotiation', args: ['--mesh'] });
    const alice = await openParticipant(browser, server, { room: 'negotiation', name: 'Alice', init: holdAnswers });
    const bob = await openParticipant(browser, server, { room: 'negotiation', name: 'Bob' });
    contexts.push(alice.context, bob.context);
    await join(alice);
    // Bob joins second, so he offers (the web client's initiator rule).
    await join(bob);
    await until(() => alice.page.evaluate(() => window.answerHold.dropped.length > 0), { what: 'Alice to answer Bob’s offer (held in her page)', timeout: 10000 });
    // The window: Alice applied the offer the server relayed and answered;
    // Bob still waits for that answer.
    assert.deepEqual((await negotiation(alice))[bob.id], { signaling: 'stable', remote: 'offer', local: 'answer' }, 'Alice has the offer');
    assert.deepEqual((await negotiation(bob))[alice.id], { signaling: 'have-local-offer', remote: null, local: 'offer' }, 'Bob has no answer');
    assert.deepEqual(await alice.page.evaluate(() => window.answerHold.dropped), [bob.id]);

    const oldIds = new Map([[alice, alice.id], [bob, bob.id]]);
    server = await restart(server, {
      name: 'restart-negotiation',
      between: () => alice.page.evaluate(() => (window.answerHold.on = false)),
    });
    await rejoined([alice, bob], oldIds);
    for (const [p, other] of [[alice, bob], [bob, alice]]) {
      await waitForMedia(p, [other], { timeout: 30000 });
      assert.equal((await negotiation(p))[other.id].signaling, 'stable', `${p.name}'s negotiation with ${other.name} finished`);
      assert.equal(await p.page.locator('[data-testid="tile"]').count(), 2, `${p.name}: no tile left over from before the restart`);
    }
    await waitForFramesToGrow(alice, [bob]);
    await waitForFramesToGrow(bob, [alice]);
    assert.deepEqual(problemsOf([alice, bob]), []);
    for (const c of contexts.splice(0)) await c.close();
    await server.stopCleanly('the second server');
    server = null;
  });

  test('relay-only participants get fresh TURN credentials after a restart and video flows again', async () => {
    server = await startServer({ name: 'restart-relay', args: ['--mesh'] });
    const people = [];
    for (const name of ['Alice', 'Bob']) people.push(await openParticipant(browser, server, { room: 'relayed', name, relay: true }));
    const [alice, bob] = people;
    contexts.push(alice.context, bob.context);
    for (const p of people) await join(p);
    const turnOf = (p) =>
      p.page.evaluate(() => {
        const [peer] = window.natter.peers.values();
        const config = peer.pc.getConfiguration();
        const turn = config.iceServers.find((s) => [].concat(s.urls).some((u) => u.startsWith('turn:')));
        return { policy: config.iceTransportPolicy, username: turn?.username, credential: turn?.credential };
      });
    const relayed = async (p, other) => {
      await waitForMedia(p, [other], { timeout: 40000 });
      const s = (await mediaStats(p.page))[other.id];
      assert.deepEqual({ local: s.local, remote: s.remote }, { local: 'relay', remote: 'relay' }, `${p.name}→${other.name} selected pair`);
    };
    for (const [p, other] of [[alice, bob], [bob, alice]]) await relayed(p, other);
    const before = new Map();
    for (const p of people) {
      before.set(p, await turnOf(p));
      assert.equal(before.get(p).policy, 'relay');
      assert.ok(before.get(p).username && before.get(p).credential, `${p.name} has TURN credentials`);
    }

    const oldIds = new Map([[alice, alice.id], [bob, bob.id]]);
    server = await restart(server, { name: 'restart-relay', secret: randomBytes(24).toString('hex') });
    await rejoined(people, oldIds);
    for (const [p, other] of [[alice, bob], [bob, alice]]) await relayed(p, other);
    for (const p of people) {
      const now = await turnOf(p);
      assert.equal(now.policy, 'relay');
      assert.notEqual(now.credential, before.get(p).credential, `${p.name} uses the new server's TURN credential`);
    }
    await waitForFramesToGrow(alice, [bob]);
    await waitForFramesToGrow(bob, [alice]);
    // TURN workers publish their counters once a second.
    let turn;
    await until(
      async () => {
        const m = await server.metrics();
        turn = { allocations: m.get('natter_turn_allocations'), toPeer: m.get('natter_turn_relayed_to_peer_bytes_total') };
        return turn.allocations >= 2 && turn.toPeer > 0;
      },
      { timeout: 5000, what: 'allocations and relayed bytes on the restarted server', describe: () => JSON.stringify(turn) },
    );
    console.log(`# after the restart, the new TURN server: ${JSON.stringify(turn)}`);
    assert.deepEqual(problemsOf(people), []);
  });
});
