// namespace: veth
//
// In scripts/test-browser's run. It was out of it after a run in
// which, limited at 300 kbit/s, the server's estimate of Carol's leg
// rose to 616 kbit/s and then 1.27 Mbit/s for 3 s after a probe, and
// Carol was given Alice's h: a probe cluster smaller than the tbf's
// bucket passed at its own rate. natter's GCC now tells a bucket's
// burst from the link (2edd44a; modelled in crates/natter/tests/
// congestion.rs); after it, 4 passes in a row on a loaded 2-core
// machine, the estimate of Carol's leg 132-307 kbit/s while limited.
//
// Issue 13, acceptance 2: `natter serve`'s SFU picks each subscriber's
// simulcast layer by its bandwidth and its tile size, and stops the
// layers nobody receives at the publisher (dynacast), with Chromium
// pages on both ends.
//
// Three pages publish a 960x540 fake camera as simulcast q/h/f
// (libwebrtc's simulcast table gives three layers at that size:
// 240x135, 480x270, 960x540) and subscribe to each other. Carol's
// downlink is limited to 300 kbit/s with `tc tbf` on the namespace's
// loopback (an htb class holding the tbf, chosen by u32 filters, IPv4
// and IPv6, on the UDP ports of all Carol's local candidates, so that
// the pair that carries her media in the end is limited whichever it
// is: only what the server sends Carol goes through it). The test is in a namespace of
// its own (`veth`) so the qdisc touches no other test file.
//
// 1. Limited, Carol receives q of both publishers and keeps decoding
//    (framesDecoded grows, no gap over 1 s between polls every 200 ms),
//    while Alice receives a higher layer of Bob; lifted, Carol returns
//    to f within 10 s.
// 2. A small tile (Carol's video of Alice set to 100x56 CSS pixels)
//    gets q; enlarged, f within 10 s.
// 3. Dynacast: with both subscribers' videos of Alice small, Alice's
//    page stops encoding h and f (the server's `layers` message sets
//    their encodings inactive: getStats shows `active` false and
//    bytesSent standing still); Carol's enlarged, f is encoded again
//    and reaches her.
//
// Each publisher caps q at 50 kbit/s (see capLowestLayer). The tbf's
// bucket is 1600 bytes.
//
// Printed as diagnostics, to explain a failure: the server's estimate
// of Carol's leg by second (natter's GCC from Chromium's transport-wide
// feedback, logged at trace); the layer Carol decodes of each publisher
// at each poll (runs of equal polls); what each publisher's page sends
// per layer by second (kbit/s, `~` for an inactive encoding); and the
// server's layer events (switches, dynacast pauses and resumes).
//
// 2026-12-07, before the fix in natter-sfu's meter: Chromium enables f
// seconds after the rest; nobody wanted it yet, so dynacast marked it
// paused at its first reading, a tenth of a second of f spread over the
// 1 s window, and kept that as f's rate: Carol, limited, was given f.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { join, launchBrowser, openParticipant, problemsOf, startServer, until } from './harness.mjs';

const ROOM = 'layers';
const CAMERA = { width: '960', height: '540', fps: '15' };
/** The frame width of each layer Chromium encodes from CAMERA. */
const WIDTH = { q: 240, h: 480, f: 960 };
const layerOf = (width) => Object.keys(WIDTH).find((l) => WIDTH[l] === width) ?? `${width}px`;
/** The acceptance's bounds. */
const POLL_MS = 200;
const MAX_GAP_MS = 1000;
const RECOVER_MS = 10000;
const LIMIT = '300kbit';
const Q_MAX_BPS = 50000;

/** Runs `tc ARGS` in the test's namespace; a missing tc fails with the package to install. */
function tc(...args) {
  try {
    return execFileSync('tc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error('tc is missing: apt-get install iproute2');
    throw new Error(`tc ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

/**
 * Everything sent to the UDP `ports` on lo, over IPv4 or IPv6, through a tbf at `rate`; the rest
 * unlimited.
 */
function limitDownlink(ports, rate) {
  limited = true;
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '2');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:2', 'htb', 'rate', '10gbit');
  // 200 ms of queue at the rate, then drops, as a real bottleneck does;
  // a burst of one packet, so nothing crosses faster than the rate.
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:1', 'handle', '10:', 'tbf', 'rate', rate, 'burst', '1600', 'latency', '200ms');
  for (const port of ports) {
    tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', String(port), '0xffff', 'flowid', '1:1');
    tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ipv6', 'prio', '2', 'u32', 'match', 'ip6', 'protocol', '17', '0xff', 'match', 'ip6', 'dport', String(port), '0xffff', 'flowid', '1:1');
  }
}

let limited = false;

function liftLimit() {
  if (!limited) return;
  tc('qdisc', 'del', 'dev', 'lo', 'root');
  limited = false;
}

/**
 * Once the page's connection to the server has selected a pair: the UDP ports of all its local
 * candidates (whichever pair carries the media in the end, its port is one of them) and the
 * selected pair's addresses.
 */
function localPorts(p) {
  return p.page.evaluate(async () => {
    const report = await window.natter.sfu.pc.getStats();
    let pairId;
    report.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
    });
    const pair = pairId && report.get(pairId);
    if (!pair) return undefined;
    const ports = new Set();
    report.forEach((r) => {
      if (r.type === 'local-candidate' && r.protocol === 'udp') ports.add(r.port);
    });
    const at = (c) => c && `${c.address}:${c.port}`;
    return { ports: [...ports], selected: `${at(report.get(pair.localCandidateId))} -> ${at(report.get(pair.remoteCandidateId))}` };
  });
}

/** peer → {framesDecoded, frameWidth} of the video `p` receives from each publisher. */
function videoIn(p) {
  return p.page.evaluate(async () => {
    const sfu = window.natter.sfu;
    const byPeer = {};
    (await sfu.pc.getStats()).forEach((r) => {
      const peer = r.type === 'inbound-rtp' && r.kind === 'video' ? sfu.slots.get(r.mid)?.peer : null;
      if (peer) byPeer[peer] = { framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0, bytes: r.bytesReceived || 0 };
    });
    return byPeer;
  });
}

/**
 * Polls `p`'s video from each of `from` every POLL_MS until `done(got)`
 * holds on a poll (or `forMs` passes when `done` is absent). Records, per
 * publisher, each layer change (the timeline) and the longest time
 * framesDecoded did not grow. Fails after `timeout` with `what`.
 */
async function watch(p, from, { forMs, done, timeout, what, timeline, t0, always }) {
  const start = Date.now();
  const last = new Map(); // publisher → {frames, grewAt, width}
  const gaps = Object.fromEntries(from.map((o) => [o.name, 0]));
  let got;
  for (;;) {
    const polledAt = Date.now();
    got = await videoIn(p);
    for (const o of from) {
      const v = got[o.id] ?? { framesDecoded: 0, frameWidth: 0 };
      const was = last.get(o.id);
      if (!was || v.framesDecoded > was.frames) {
        last.set(o.id, { frames: v.framesDecoded, grewAt: polledAt, width: v.frameWidth });
      } else {
        gaps[o.name] = Math.max(gaps[o.name], polledAt - was.grewAt);
      }
      const entries = timeline[o.name];
      const layer = v.frameWidth ? layerOf(v.frameWidth) : '-';
      if (entries.at(-1)?.layer === layer) entries.at(-1).polls++;
      else entries.push({ at: polledAt - t0, layer, polls: 1 });
    }
    if (always && !always(got)) {
      throw new Error(`${what}; at ${polledAt - start} ms ${p.name} receives ${from.map((o) => `${o.name}'s at ${layerOf(got[o.id]?.frameWidth)}`).join(', ')}`);
    }
    const elapsed = polledAt - start;
    if (done && elapsed > timeout) {
      throw new Error(`${what} within ${timeout} ms; ${p.name} receives ${from.map((o) => `${o.name}'s at ${layerOf(got[o.id]?.frameWidth)}`).join(', ')}`);
    }
    if (done ? done(got) : elapsed >= forMs) return { got, gaps, elapsed: Date.now() - start };
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, POLL_MS - (Date.now() - polledAt))));
  }
}

/**
 * Caps q at `bps` on `p`'s camera sender: two q streams and two audio
 * streams must fit the limited link. At Chromium's own rate for q they
 * did not (Carol decoded 29 frames of Alice's q in 6 s); at 80 kbit/s
 * they did, but the link was then so full that a probe's padding made
 * Carol's video freeze for up to 1.8 s.
 */
function capLowestLayer(p, bps) {
  return p.page.evaluate(async (bps) => {
    const sender = window.natter.sfu.pc.getSenders().find((s) => s.track?.kind === 'video');
    const parameters = sender.getParameters();
    parameters.encodings[0].maxBitrate = bps;
    await sender.setParameters(parameters);
  }, bps);
}

/** Shows `p`'s video of `of` at a CSS size (the web client's ResizeObserver sends `tile`). */
function resizeVideo(p, of, width, height) {
  return p.page.evaluate(
    ({ id, width, height }) => {
      const video = document.querySelector(`[data-testid="tile"][data-peer-id="${id}"] video`);
      video.style.width = `${width}px`;
      video.style.height = `${height}px`;
    },
    { id: of.id, width, height },
  );
}

/** rid → {bytes, active} of the camera encodings `p` sends (outbound-rtp). */
function encodingsOut(p) {
  return p.page.evaluate(async () => {
    const out = {};
    (await window.natter.sfu.pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video' && r.rid) out[r.rid] = { bytes: r.bytesSent || 0, active: r.active };
    });
    return out;
  });
}

/**
 * Samples what each of `publishers` sends per layer once a second until
 * the returned function is called; `lines` gets one entry per second:
 * `12s Alice q49 h0~ f880` (kbit/s; `~`: the encoding is inactive).
 */
function sampleEncodings(publishers, t0, lines) {
  const last = new Map();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      for (const p of publishers) {
        const now = await encodingsOut(p).catch(() => ({}));
        const before = last.get(p.name);
        if (before) {
          const kbps = Object.keys(now)
            .sort((a, b) => 'qhf'.indexOf(a) - 'qhf'.indexOf(b))
            .map((rid) => `${rid}${Math.round(((now[rid].bytes - (before.got[rid]?.bytes ?? 0)) * 8) / (at - before.at))}${now[rid].active === false ? '~' : ''}`);
          lines.push(`${Math.round((at - t0) / 1000)}s ${p.name} ${kbps.join(' ')}`);
        }
        last.set(p.name, { at, got: now });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - at))));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

/** The server's layer events from its log (natter::sfu trace; the log is appended to across runs) since `since`, `at ms: event`. */
function layerEvents(logPath, since) {
  const out = [];
  for (const line of fs.readFileSync(logPath, 'utf8').split('\n')) {
    const m = line.match(/^(\S+)Z .*SFU room event.*(Layer(?:Switched|Paused|Resumed) \{[^}]*\})/);
    if (!m) continue;
    const compact = m[2].replace(/ParticipantId\((\d+)\)/g, 'P$1').replace(/PublicationId\((\d+)\)/g, '#$1').replace(/(subscriber|publisher|publication|layer): /g, '');
    const at = Date.parse(`${m[1]}Z`) - since;
    if (at >= 0) out.push(`${at}: ${compact}`);
  }
  return out;
}

/** The server's estimates of `peer`'s leg from its log (natter::sfu trace), one per second. */
function estimates(logPath, peer, since) {
  const seconds = new Map();
  for (const line of fs.readFileSync(logPath, 'utf8').split('\n')) {
    const m = line.match(/^(\S+)Z .*SFU estimate.* peer=(\S+) bps=(\d+)/);
    if (!m || m[2] !== peer) continue;
    const at = Date.parse(`${m[1]}Z`) - since;
    if (at >= 0) seconds.set(Math.floor(at / 1000), Math.round(Number(m[3]) / 1000));
  }
  return [...seconds].map(([s, kbps]) => `${s}s:${kbps}k`).join(' ');
}

describe('the SFU picks layers by bandwidth and tile size (Chromium)', () => {
  let server;
  let browser;
  let alice;
  let bob;
  let carol;
  const t0 = Date.now();
  const timings = {};
  /** publisher name → [{at, layer, polls}] as Carol decodes it, one entry per run of equal polls. */
  const timeline = { Alice: [], Bob: [] };
  /** What Alice and Bob send per layer, by second. */
  const sent = [];
  let stopSampling;

  before(async () => {
    // The worker logs each leg's estimate at trace.
    process.env.RUST_LOG = 'info,natter::sfu=trace';
    browser = await launchBrowser();
    server = await startServer({ name: 'sfu-layers', maxParticipants: 3 });
    alice = await openParticipant(browser, server, { room: ROOM, name: 'Alice', query: CAMERA });
    bob = await openParticipant(browser, server, { room: ROOM, name: 'Bob', query: CAMERA });
    carol = await openParticipant(browser, server, { room: ROOM, name: 'Carol', query: CAMERA });
    for (const p of [alice, bob, carol]) await join(p);
    for (const p of [alice, bob, carol]) await until(() => p.page.evaluate(() => window.natter.sfu?.pc.getSenders().some((s) => s.track?.kind === 'video')), { what: `${p.name}'s camera sender` });
    for (const p of [alice, bob, carol]) await capLowestLayer(p, Q_MAX_BPS);
    stopSampling = sampleEncodings([alice, bob], t0, sent);
  });

  after(async () => {
    console.log('# timings (ms):', JSON.stringify(timings));
    await stopSampling?.();
    const runs = (entries) => entries.map((e) => `${e.at}:${e.layer}x${e.polls}`).join(' ');
    console.log(`# Carol decodes, per poll every ${POLL_MS} ms (ms since start:layer x polls): Alice ${runs(timeline.Alice)}; Bob ${runs(timeline.Bob)}`);
    console.log(`# Alice and Bob send (kbit/s per layer, ~ inactive): ${sent.join(', ')}`);
    if (server && carol?.id) {
      console.log(`# server's estimate of Carol's leg (kbit/s by second): ${estimates(server.logPath, carol.id, t0)}`);
      console.log(`# server's layer events (ms since start; P = participant in join order: Alice, Bob, Carol): ${layerEvents(server.logPath, t0).join(', ')}`);
    }
    try {
      liftLimit();
    } catch {
      // Not limited (any more).
    }
    await browser?.close();
    if (server) await server.stopCleanly();
  });

  test(`a subscriber behind ${LIMIT} receives q and keeps decoding; lifted, f within ${RECOVER_MS / 1000} s`, async (t) => {
    const { ports, selected } = await until(() => localPorts(carol), { timeout: 20000, what: "Carol's connection to the server to select a pair" });
    limitDownlink(ports, LIMIT);
    t.after(liftLimit); // also when an assertion fails, so the next test runs unlimited
    timings.limited = Date.now() - t0;
    t.diagnostic(`Carol's downlink (UDP ports ${ports.join(', ')}; selected pair ${selected}) limited to ${LIMIT} at ${timings.limited} ms`);

    const both = [alice, bob];
    const allAt = (layer) => (got) => both.every((o) => got[o.id]?.frameWidth === WIDTH[layer]);
    await watch(carol, both, { done: allAt('q'), timeout: 30000, what: "Carol's video of Alice and Bob to come at q", timeline, t0 });
    timings.carolAtQ = Date.now() - t0;

    // Limited and at q: decoding goes on without a freeze over 1 s.
    const before = await videoIn(carol);
    const held = await watch(carol, both, { forMs: 6000, always: allAt('q'), what: 'Carol to keep receiving Alice and Bob at q while limited', timeline, t0 });
    const kbps = Object.fromEntries(both.map((o) => [o.name, Math.round(((held.got[o.id].bytes - before[o.id].bytes) * 8) / held.elapsed)]));
    t.diagnostic(`limited: Carol receives (kbit/s) ${JSON.stringify(kbps)}; longest gaps in framesDecoded ${JSON.stringify(held.gaps)} ms; frames ${JSON.stringify(both.map((o) => held.got[o.id].framesDecoded - before[o.id].framesDecoded))}`);
    for (const o of both) {
      assert.equal(held.got[o.id].frameWidth, WIDTH.q, `Carol receives Alice's and Bob's at q while limited; ${o.name}'s at ${layerOf(held.got[o.id].frameWidth)}`);
      assert.ok(held.got[o.id].framesDecoded > before[o.id].framesDecoded + 30, `Carol decoded ${held.got[o.id].framesDecoded - before[o.id].framesDecoded} frames of ${o.name}'s q in 6 s`);
      assert.ok(held.gaps[o.name] <= MAX_GAP_MS, `Carol's video of ${o.name} froze for ${held.gaps[o.name]} ms at q (limit ${MAX_GAP_MS})`);
    }

    // Unlimited, Alice gets Bob above q meanwhile.
    const aliceGets = await videoIn(alice);
    assert.ok(aliceGets[bob.id]?.frameWidth > WIDTH.q, `Alice (unlimited) receives Bob's at ${layerOf(aliceGets[bob.id]?.frameWidth)}, not above q`);
    t.diagnostic(`Alice (unlimited) receives Bob's at ${layerOf(aliceGets[bob.id].frameWidth)}`);

    liftLimit();
    const lifted = Date.now();
    timings.lifted = lifted - t0;
    const back = await watch(carol, both, { done: allAt('f'), timeout: RECOVER_MS, what: "Carol's video of Alice and Bob to return to f after the limit was lifted", timeline, t0 });
    timings.carolAtF = Date.now() - t0;
    t.diagnostic(`lifted: f for both after ${Date.now() - lifted} ms; longest gaps ${JSON.stringify(back.gaps)} ms`);
    assert.deepEqual(problemsOf([alice, bob, carol]), []);
  });

  test(`a small tile gets q; enlarged, f within ${RECOVER_MS / 1000} s`, async (t) => {
    // Carol's video of Alice at a CSS size: the web client's
    // ResizeObserver sends the `tile` message.
    const resize = (width, height) => resizeVideo(carol, alice, width, height);
    const aliceAt = (layer) => (got) => got[alice.id]?.frameWidth === WIDTH[layer];
    let started = Date.now();
    await resize(100, 56);
    await watch(carol, [alice], { done: aliceAt('q'), timeout: RECOVER_MS, what: "Carol's video of Alice to come at q in a 100x56 tile", timeline, t0 });
    timings.smallTileAtQ = Date.now() - t0;
    t.diagnostic(`100x56 tile: q after ${Date.now() - started} ms`);
    started = Date.now();
    await resize(960, 540);
    await watch(carol, [alice], { done: aliceAt('f'), timeout: RECOVER_MS, what: "Carol's video of Alice to come at f in a 960x540 tile", timeline, t0 });
    timings.bigTileAtF = Date.now() - t0;
    t.diagnostic(`960x540 tile: f after ${Date.now() - started} ms`);
    assert.deepEqual(problemsOf([alice, bob, carol]), []);
  });

  test(`dynacast: layers nobody receives stop at the publisher and resume within ${RECOVER_MS / 1000} s`, async (t) => {
    // Bob's and Carol's videos of Alice small: nobody receives Alice's h or f.
    const resize = (p, width, height) => resizeVideo(p, alice, width, height);
    /** Alice's h and f: {rid: {grew, active}} over one second. */
    const aliceSends = async () => {
      const before = await encodingsOut(alice);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const after = await encodingsOut(alice);
      return Object.fromEntries(['h', 'f'].map((rid) => [rid, { grew: after[rid].bytes > before[rid].bytes, active: after[rid].active }]));
    };
    let started = Date.now();
    await resize(bob, 100, 56);
    await resize(carol, 100, 56);
    const stopped = await until(
      async () => {
        const s = await aliceSends();
        // `active` is in Chromium's outbound-rtp since M114.
        return ['h', 'f'].every((rid) => s[rid].active !== true && !s[rid].grew) && s;
      },
      {
        timeout: RECOVER_MS,
        what: "Alice's page to stop encoding h and f when nobody receives them",
        describe: () => aliceSends().then((s) => JSON.stringify(s)),
      },
    );
    timings.dynacastStopped = Date.now() - t0;
    t.diagnostic(`small tiles: Alice stopped encoding h and f after ${Date.now() - started} ms: ${JSON.stringify(stopped)}`);
    // Carol still decodes Alice's q meanwhile.
    const held = await watch(carol, [alice], { forMs: 2000, always: (got) => got[alice.id]?.frameWidth === WIDTH.q, what: "Carol to keep decoding Alice's q while h and f are stopped", timeline, t0 });
    assert.ok(held.gaps.Alice <= MAX_GAP_MS, `Carol's video of Alice froze for ${held.gaps.Alice} ms while h and f were stopped`);

    started = Date.now();
    await resize(carol, 960, 540);
    await watch(carol, [alice], { done: (got) => got[alice.id]?.frameWidth === WIDTH.f, timeout: RECOVER_MS, what: "Carol's video of Alice to come at f once her tile grew again", timeline, t0 });
    const resumed = await aliceSends();
    timings.dynacastResumedAtF = Date.now() - t0;
    t.diagnostic(`Carol's tile 960x540: f again after ${Date.now() - started} ms; Alice sends ${JSON.stringify(resumed)}`);
    assert.ok(resumed.f.active !== false && resumed.f.grew, `Alice encodes f again: ${JSON.stringify(resumed.f)}`);
    assert.deepEqual(problemsOf([alice, bob, carol]), []);
  });
});
