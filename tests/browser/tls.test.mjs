// Issue 16: `natter serve --cert` with a certificate the test makes (a
// tiny CA and a leaf for 127.0.0.1), which Chromium is told to trust by
// the SHA-256 of its public key (--ignore-certificate-errors-spki-list,
// which trusts exactly that key). The web client loads over https://,
// signals over wss://, and two participants of an SFU room (natter
// serve's default) reach the server's SFU relay-only through the embedded
// TURN server's TLS port (5349's role): their pages are given the `turns:`
// URL alone, as on a network that lets only TLS out.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, join, launchBrowser, openParticipant, problemsOf, sfuStats, startServer, until, waitForFramesToGrow, waitForMedia } from './harness.mjs';

/**
 * A CA and a leaf certificate for 127.0.0.1 and localhost (ECDSA P-256),
 * made with the openssl CLI in `dir`; returns the PEM paths and the
 * base64 SHA-256 of the leaf's SubjectPublicKeyInfo.
 */
function makeCertificate(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const openssl = (...args) => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      if (e.code === 'ENOENT') throw new Error('the openssl CLI is missing: install it with "apt-get install openssl"');
      throw new Error(`openssl ${args.join(' ')}: ${e.stderr}`);
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=natter test CA');
  openssl('req', ...ec, '-keyout', 'key.pem', '-out', 'leaf.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(
    path.join(dir, 'leaf.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'leaf.ext');
  const leaf = new X509Certificate(fs.readFileSync(path.join(dir, 'cert.pem')));
  const spki = createHash('sha256').update(leaf.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  return { cert: path.join(dir, 'cert.pem'), pkey: path.join(dir, 'key.pem'), ca: path.join(dir, 'ca.pem'), spki };
}

/** Runs in each page before the web client: its peer connections get only the `turns:` URLs of `welcome`. */
function onlyTurnsUrls() {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config = {}, ...rest) {
      const iceServers = (config.iceServers || [])
        .map((s) => ({ ...s, urls: [].concat(s.urls).filter((u) => u.startsWith('turns:')) }))
        .filter((s) => s.urls.length > 0);
      super({ ...config, iceServers }, ...rest);
    }
  };
}

/** The configuration of `page`'s one connection, to the SFU, and every local candidate it gathered. */
function iceReport(page) {
  return page.evaluate(async () => {
    const pc = window.natter.sfu.pc;
    const config = pc.getConfiguration();
    const gathered = [];
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'local-candidate') gathered.push({ type: r.candidateType, relayProtocol: r.relayProtocol, url: r.url });
    });
    return { policy: config.iceTransportPolicy, urls: config.iceServers.flatMap((x) => [].concat(x.urls)), gathered };
  });
}

describe('natter serve --cert: HTTPS, WSS and TURN over TLS', () => {
  let server;
  let browser;
  let tls;
  const people = [];
  /** Every WebSocket each page opened. */
  const sockets = new Map();

  before(async () => {
    tls = makeCertificate(path.join(ARTIFACTS, 'tls-certificate'));
    server = await startServer({ name: 'tls', tls });
    browser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${tls.spki}`] });
    for (const name of ['Alice', 'Bob']) {
      const p = await openParticipant(browser, server, { room: 'tls', name, relay: true, init: onlyTurnsUrls });
      sockets.set(p, []);
      p.page.on('websocket', (ws) => sockets.get(p).push(ws.url()));
      people.push(p);
    }
    for (const p of people) await join(p);
  });

  after(async () => {
    await browser?.close();
    if (server) {
      await server.stopCleanly();
    }
  });

  test('the page loads over https:// and signals over wss://', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.wsUrl, /^wss:\/\//);
    for (const p of people) {
      assert.ok(p.page.url().startsWith(`${server.url}/`), `${p.name} is at ${p.page.url()}`);
      assert.equal(await p.page.evaluate(() => window.isSecureContext), true, `${p.name}'s page is a secure context`);
      assert.deepEqual(sockets.get(p), [server.wsUrl], `${p.name}'s WebSockets`);
    }
  });

  test('a relay-only SFU call over TURN/TLS: each page reaches the SFU through a TLS relay, video decodes both ways', async () => {
    const turns = `turns:127.0.0.1:${server.turnTlsPort}?transport=tcp`;
    const [alice, bob] = people;
    for (const [p, other] of [[alice, bob], [bob, alice]]) await waitForMedia(p, [other], { timeout: 40000 });
    for (const [p, other] of [[alice, bob], [bob, alice]]) {
      const grown = (await waitForFramesToGrow(p, [other]))[other.id];
      assert.equal(grown.via, 'sfu', `${p.name} receives ${other.name} through the SFU`);
    }
    for (const p of people) {
      const ice = await iceReport(p.page);
      const { pair, state } = await sfuStats(p);
      assert.equal(state, 'connected', `${p.name}'s connection to the server`);
      assert.deepEqual({ policy: ice.policy, urls: ice.urls }, { policy: 'relay', urls: [turns] }, `${p.name}'s configuration`);
      const local = { type: pair.local.type, relayProtocol: pair.local.relayProtocol, url: pair.local.url };
      assert.deepEqual(local, { type: 'relay', relayProtocol: 'tls', url: turns }, `${p.name}→server selected local candidate`);
      assert.equal(pair.remote.type, 'host', `${p.name}→server selected remote candidate: the SFU's ICE-lite host candidate`);
      assert.ok(ice.gathered.length > 0, `${p.name} gathered candidates`);
      for (const c of ice.gathered) assert.deepEqual(c, { type: 'relay', relayProtocol: 'tls', url: turns }, `${p.name} gathered only TLS relays`);
    }
    // The TURN server relayed the call: its only clients came over TLS.
    let turn;
    await until(
      async () => {
        const m = await server.metrics();
        turn = { allocations: m.get('natter_turn_allocations'), toPeer: m.get('natter_turn_relayed_to_peer_bytes_total'), toClient: m.get('natter_turn_relayed_to_client_bytes_total') };
        return turn.allocations >= 2 && turn.toPeer > 100000 && turn.toClient > 100000;
      },
      { timeout: 5000, what: 'TURN counters of the relayed call', describe: () => JSON.stringify(turn) },
    );
    console.log(`# TURN over TLS: ${JSON.stringify(turn)}`);
    assert.deepEqual(problemsOf(people), []);
  });
});
