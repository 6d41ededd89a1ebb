// Shared by the SFU client tests (sfu-firefox, sfu-relay, sfu-ipv6):
// how to start natter serve with SFU rooms, a loopback origin for a
// server on another address, and waits on what a page receives through
// its one connection to the server (harness.mjs's sfuStats, read per
// receive slot).

import assert from 'node:assert/strict';
import net from 'node:net';
import { sfuStats, until } from './harness.mjs';

export { sfuStats };

/**
 * `server` (listening on another address than loopback) as pages see
 * it from http://127.0.0.1:PORT, a TCP proxy to it: a secure context, so
 * the pages may open the camera, while signaling, TURN and the SFU's
 * candidate stay on the server's own address. Close it with `close()`.
 */
export async function loopbackOrigin(server) {
  const { hostname, port } = new URL(server.url);
  const sockets = new Set();
  const listener = net.createServer((client) => {
    const up = net.connect(Number(port), hostname.replace(/^\[|\]$/g, ''));
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(up).pipe(client);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return {
    server: { ...server, url: `http://127.0.0.1:${listener.address().port}` },
    close() {
      for (const s of sockets) s.destroy();
      listener.close();
    },
  };
}

const sizeOf = (video) => `${video?.frameWidth}x${video?.frameHeight}`;

/**
 * Waits until `p` decodes video and receives audio from each of
 * `others` on the slots the server gave them, then until, from each,
 * 10 more frames are decoded at the size of a layer that publisher sends
 * (its own outbound-rtp) and another second of audio is played out, under
 * half of it concealment (audio received but not decoded is all
 * concealment). Returns, per other's name, the size and the growth seen.
 */
export async function waitForSfuMedia(p, others, { timeout = 30000 } = {}) {
  let last;
  // The sizes each publisher sends, read again on each poll: a loaded
  // encoder may scale its layers down (libwebrtc's quality scaler).
  const layers = new Map();
  const each = (ok) => (s) => (others.every((o) => ok(s.byPeer[o.id] ?? {}, o)) ? s : undefined);
  const poll = (what, ok, wait = timeout, refresh = async () => {}) =>
    until(
      async () => {
        await refresh();
        return each(ok)((last = await sfuStats(p)));
      },
      { timeout: wait, interval: 250, what: `${p.name} to ${what} from ${others.map((o) => o.name).join(', ')}`, describe: () => `${p.name}: ${JSON.stringify(last)}; publishers send ${JSON.stringify([...layers.values()])}` },
    );
  const first = await poll('decode video and receive audio', (got) => got.video?.framesDecoded > 0 && got.audio?.packets > 0);
  const grown = await poll(
    'decode 10 more frames at a size the publisher sends and play 1 s more of audio',
    (got, o) => {
      const was = first.byPeer[o.id];
      return got.video.framesDecoded >= was.video.framesDecoded + 10 && layers.get(o).includes(sizeOf(got.video)) && got.audio.samples >= was.audio.samples + 48000;
    },
    20000,
    async () => {
      for (const o of others) layers.set(o, (await sfuStats(o)).sent);
    },
  );
  const out = {};
  for (const o of others) {
    const was = first.byPeer[o.id];
    const now = grown.byPeer[o.id];
    const samples = now.audio.samples - was.audio.samples;
    const concealed = now.audio.concealed - was.audio.concealed;
    assert.ok(concealed < samples / 2, `${p.name} played ${samples} samples of ${o.name}'s audio, ${concealed} of them concealment: not decoded audio`);
    out[o.name] = { size: sizeOf(now.video), sent: layers.get(o), frames: now.video.framesDecoded - was.video.framesDecoded, samples, concealed };
  }
  return { media: out, pair: grown.pair, state: grown.state };
}

/**
 * `waitForSfuMedia` both ways between `a` and `b`, each in a connected
 * state, printed as test diagnostics; returns [[p, other, what p got]]
 * for the caller's checks of the selected pairs.
 */
export async function eachReceivesTheOther(t, a, b, { timeout = 30000 } = {}) {
  const out = [];
  for (const [p, other] of [
    [a, b],
    [b, a],
  ]) {
    const got = await waitForSfuMedia(p, [other], { timeout });
    t.diagnostic(`${p.name} from ${other.name}: ${JSON.stringify(got)}`);
    assert.equal(got.state, 'connected', `${p.name}'s connection to the server`);
    out.push([p, other, got]);
  }
  return out;
}
