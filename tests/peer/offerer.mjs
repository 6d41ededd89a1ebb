// The tests of natter as the offerer to a browser echo server (see
// startAnswerer in harness.mjs), shared by offerer.test.mjs (Chromium,
// plain 127.0.0.1 candidates), offerer-mdns.test.mjs (Chromium's
// `.local` candidates) and firefox.test.mjs (Firefox, with media), each
// in its own network namespace. `echo --client` offers, checks the
// echoes of 1,000 mixed messages on a reliable channel and 50 on an
// unordered maxRetransmits-0 one, with `media` the reflection of the
// VP8 and Opus files it sends, closes one channel and has the browser
// close the other; it does so once in each DTLS role.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, mediaFiles, runClient, startAnswerer, until } from './harness.mjs';

/** Address and port of a candidate line (`... 127.0.0.1 5000 typ host`). */
function endpoint(candidate) {
  const m = / (\S+) (\d+) typ (\w+)/.exec(candidate ?? '');
  return m && { address: m[1], port: Number(m[2]), type: m[3] };
}

/**
 * peer: the browser's name; launch: starts it (headless Chromium by
 * default); mdns: Chromium hides its address behind `.local` names
 * (needs the veth namespace of scripts/test-peer); natterAddress:
 * natter's host candidate; browserAddress: the browser's host address
 * (what its names resolve to); media: natter also sends VP8 and Opus,
 * which the browser must send back.
 */
export function offererTests({ name, peer = 'Chromium', launch = launchBrowser, mdns = false, natterAddress, browserAddress, media = false }) {
  describe(`natter offers to ${peer} (${mdns ? `${peer}'s .local candidates` : 'plain addresses'}${media ? ', with media' : ''})`, () => {
    let browser, answerer, files;
    let connections = 0;

    before(async () => {
      if (media) files = mediaFiles(name);
      browser = await launch({ mdns });
      answerer = await startAnswerer({ browser, name });
    });

    after(async () => {
      await answerer?.stop();
      await browser?.close();
    });

    // Browsers answer natter's actpass with a=setup:active unless told
    // otherwise; `passive` is the other DTLS role.
    for (const [setup, natterRole, browserRole] of [
      [null, 'server', 'client'],
      ['passive', 'client', 'server'],
    ]) {
      test(`natter as DTLS ${natterRole} (${peer} answers a=setup:${setup ?? 'active'}): the echo check passes${media ? ', media reflected,' : ''} and getStats agrees`, async (t) => {
        const index = connections++;
        const url = `${answerer.url}/offer${setup ? `?setup=${setup}` : ''}`;
        const args = media ? ['--video', files.video, '--audio', files.audio] : [];
        const run = await runClient({ name: `${name}-${natterRole}`, url, addresses: [natterAddress], args });
        // The client exits once it saw both closes; the page's own
        // 'close' events may come a moment later. A client that failed
        // may never have reached the page: its log says why.
        const page = await until(
          async () => {
            const p = await answerer.connection(index);
            if (run.code !== 0) return p ?? { channels: [], errors: ['no connection reached the page'] };
            return p?.channels.every((c) => c.state === 'closed') && p;
          },
          { timeout: 10000, what: "the page's channels to reach 'closed'" },
        );
        t.diagnostic(`natter: ${run.stdout.trim()}`);
        t.diagnostic(`${peer}: ${JSON.stringify({ ...page, offer: undefined, answer: undefined })}`);
        assert.equal(
          run.code,
          0,
          `echo --client failed (exit ${run.code}, signal ${run.signal})\n--- ${peer} ---\n${JSON.stringify(page, null, 1)}\n--- client log (tail, full: ${run.logPath}) ---\n${run.tail}`,
        );
        const s = run.summary;
        assert.ok(s?.ok, `the client printed its JSON summary: ${run.stdout}`);

        assert.match(page.offer, /^a=setup:actpass/m, "natter's offer says a=setup:actpass");
        assert.match(page.offer, /^a=end-of-candidates/m, "natter's offer is complete (gathering waited for)");
        assert.match(page.answer, new RegExp(`^a=setup:${setup ?? 'active'}`, 'm'), `${peer} applied an answer with a=setup:${setup ?? 'active'}`);
        const candidates = page.answer.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
        assert.ok(candidates.length > 0, `${peer}'s answer carries candidates`);
        if (mdns) {
          assert.ok(candidates.every((c) => / [0-9a-f-]+\.local \d+ typ host/.test(c)), `every candidate of ${peer}'s answer is a .local name: ${candidates}`);
          const resolved = [...run.log.matchAll(/mDNS name (resolved|did not resolve).*/g)].map((m) => m[0]);
          assert.ok(resolved.length > 0 && resolved.every((l) => l.includes('resolved') && l.includes(`ip=${browserAddress}`)), `natter resolved ${peer}'s .local name to ${browserAddress}: ${resolved}`);
        } else {
          assert.ok(candidates.some((c) => c.includes(` ${browserAddress} `)), `${peer}'s answer has a ${browserAddress} host candidate`);
        }
        if (media) {
          // 3 s of each file: 90 VP8 frames and 150 Opus packets; the
          // browser decodes them and encodes them again, so natter
          // checks the count and the keyframes' picture size, not bytes.
          assert.deepEqual(page.tracks, ['video', 'audio'], `${peer} received natter's video and audio and sent them back`);
          assert.match(page.answer, /^m=video [^]*?^a=sendrecv[^]*?^m=audio [^]*?^a=sendrecv/m, `${peer} answers video and audio sendrecv`);
          assert.deepEqual(s.media.size, [320, 240], `natter decoded the reflected keyframes at the file's 320x240: ${JSON.stringify(s.media)}`);
          assert.ok(s.media.received.every((n, i) => 2 * n >= s.media.sent[i]), `${peer} reflected at least half of each stream: ${JSON.stringify(s.media)}`);
        }

        assert.equal(s.reliable.messages, 1000, "1,000 messages echoed on 'echo'");
        assert.ok(s.reliable.text > 0 && s.reliable.binary > 0, 'text and binary');
        assert.equal(s.reliable.largest, 262144, 'the largest message is 256 KiB');
        assert.equal(s.unordered.messages, 50, "50 messages echoed on 'lossy'");
        assert.deepEqual(page.errors, [], 'the page reported no errors');
        const echo = page.channels.find((c) => c.label === 'echo');
        const lossy = page.channels.find((c) => c.label === 'lossy');
        assert.deepEqual(
          { messages: echo?.messages, bytes: echo?.bytes, ordered: echo?.ordered, closedBy: echo?.closedBy, state: echo?.state },
          { messages: 1000, bytes: s.reliable.bytes, ordered: true, closedBy: 'browser', state: 'closed' },
          `${peer} echoed 1,000 messages on 'echo' and closed it on close-me`,
        );
        assert.deepEqual(
          { messages: lossy?.messages, ordered: lossy?.ordered, maxRetransmits: lossy?.maxRetransmits, closedBy: lossy?.closedBy, state: lossy?.state },
          { messages: 50, ordered: false, maxRetransmits: 0, closedBy: 'peer', state: 'closed' },
          `${peer} saw 'lossy' unordered with maxRetransmits 0, and natter closed it`,
        );

        assert.equal(s.dtls_role, natterRole, `natter is the DTLS ${natterRole}`);
        assert.equal(s.dtls_state, 'connected');
        assert.equal(page.stats?.dtlsState, 'connected', `${peer}'s DTLS transport was connected`);
        assert.equal(page.stats?.dtlsRole, browserRole, `${peer} is the DTLS ${browserRole}`);
        assert.equal(page.stats?.iceRole, 'controlled', `${peer}, the answerer, is ICE controlled`);
        const natterLocal = endpoint(s.selected_pair.local);
        const natterRemote = endpoint(s.selected_pair.remote);
        const pair = page.stats?.pair;
        assert.ok(pair, `${peer} has a selected pair: ${JSON.stringify(page.stats)}`);
        assert.equal(natterLocal.address, natterAddress, `natter's selected local candidate is its ${natterAddress}`);
        assert.equal(pair.remote.port, natterLocal.port, `${peer}'s selected pair reaches natter's selected local port`);
        assert.equal(natterRemote.port, pair.local.port, `natter's selected pair reaches ${peer}'s selected local port`);
        if (mdns) {
          // Chromium without adapter enumeration binds its socket to the
          // any address and only names its default-route address; its
          // checks to natter's 198.18.0.2 leave with the source address
          // the kernel picks (198.18.0.2 itself), so natter may pair with
          // that peer-reflexive address: the port names the socket.
          const named = candidates.map(endpoint).map((e) => e.port);
          assert.ok(named.includes(natterRemote.port), `natter's selected pair reaches the socket of one of ${peer}'s .local candidates (ports ${named})`);
        } else {
          assert.equal(pair.remote.address, natterAddress, `${peer}'s selected remote address is natter's ${natterAddress}`);
        }
      });
    }
  });
}
