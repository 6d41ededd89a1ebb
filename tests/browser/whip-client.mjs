// Node's side of the WHIP and WHEP tests (tests/browser/whip.test.mjs,
// tests/peer/whip-gstreamer.test.mjs): Chromium pages of the server's
// origin with the WHIP client of whip-page.js, and the server's WHIP
// counts from /metrics.

import path from 'node:path';
import { ROOT, until } from './harness.mjs';

const PAGE_SCRIPT = path.join(ROOT, 'tests/browser/whip-page.js');

/** WHIP and WHEP sessions, offers awaiting the SFU, signaling sessions. */
export async function counts(server) {
  const m = await server.metrics();
  return {
    whip: m.get('natter_whip_sessions{protocol="whip"}'),
    whep: m.get('natter_whip_sessions{protocol="whep"}'),
    pending: m.get('natter_whip_pending'),
    signaling: m.get('natter_signaling_sessions'),
  };
}

/**
 * A page of the server's origin (a secure context on 127.0.0.1) with
 * the WHIP client loaded as `window.whip`, in its own browser context.
 */
export async function whipPage(browser, server) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${server.url}/healthz`);
  await page.addScriptTag({ path: PAGE_SCRIPT });
  const call = (method) => (url, token) => page.evaluate(({ method, url, token }) => window.whip[method](url, token), { method, url, token });
  return {
    page,
    context,
    problems,
    /** WHIP: POSTs the fake camera's and microphone's offer to `url`; {status, location, etag, link, challenge, text}. */
    publish: call('publish'),
    /** WHEP: POSTs an offer of one audio and one video receive section to `url`; the same. */
    play: call('play'),
    stats: () => page.evaluate(() => window.whip.stats()),
  };
}

/** Waits until `client`'s stats satisfy `ok`; returns them. */
export function untilStats(client, what, ok, timeout = 30000) {
  let last;
  return until(
    async () => {
      last = await client.stats();
      return ok(last) ? last : undefined;
    },
    { timeout, interval: 200, what, describe: () => JSON.stringify(last) },
  );
}

/**
 * Waits until the WHEP page `player` decodes video and receives audio,
 * then until 30 more frames are decoded and 50 more audio packets came;
 * returns the stats then. `describe` adds to a failure's message.
 */
export async function untilPlaying(player, { timeout = 30000, describe = () => '' } = {}) {
  const explain = (e) => {
    throw new Error(`${e.message}\n${describe()}`);
  };
  const first = await untilStats(player, 'the WHEP page to decode video and receive audio', (s) => s.framesDecoded > 0 && s.audioPackets > 0, timeout).catch(explain);
  const more = (s) => s.framesDecoded >= first.framesDecoded + 30 && s.audioPackets >= first.audioPackets + 50;
  return untilStats(player, 'the WHEP page to decode 30 more frames and 50 more audio packets', more).catch(explain);
}
