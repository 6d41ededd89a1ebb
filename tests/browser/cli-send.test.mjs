// Issue 14: `natter send FILE` and `natter receive CODE` as processes
// through a `natter serve --dev` on loopback, whose rooms are SFU rooms:
// the transfer still goes peer to peer (issue 13), none of it through
// the SFU or TURN. A 24 MiB file goes across
// byte-exact (SHA-256) with both sides' JSON progress asserted; a wrong
// code, a code nobody waits on, a typo and no server end with clear
// errors, and the third wrong code stops the sender; a receiver (of a
// 64 MiB file) killed mid-transfer runs again, resumes from its part file and
// finishes byte-exact with fewer bytes sent the second time. A Chromium
// page on the web client's receive.html, given the code, proves it and
// receives a file byte-exact (SHA-256 in the page with WebCrypto).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, launchBrowser, randomFile, startNatter, startServer, until } from './harness.mjs';

const FILE_BYTES = 24 * 1024 * 1024;
const MIB = 1024 * 1024;
const RESUME_BYTES = 64 * MIB;
const BROWSER_BYTES = 8 * MIB;

/** `natter ARGS --json`, logged to target/browser/cli-send.LABEL.log. */
function run(label, args) {
  return startNatter(`cli-send.${label}`, [...args, '--json'], { timeout: 60000 });
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function freshDir(name) {
  const dir = path.join(ARTIFACTS, name);
  fs.rmSync(dir, { recursive: true, force: true });
  return dir;
}

/** Progress lines of one attempt: bytes growing, within the file. */
function assertProgress(events, size) {
  const progress = events.filter((e) => e.event === 'progress');
  assert.ok(progress.length >= 2, `progress lines: ${JSON.stringify(progress)}`);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i].bytes > progress[i - 1].bytes, JSON.stringify(progress.slice(i - 1, i + 1)));
  for (const p of progress) {
    assert.equal(p.size, size);
    assert.ok(p.bytes <= size && p.rate >= 0, JSON.stringify(p));
  }
}

describe('natter send and natter receive', () => {
  let server;
  const children = [];
  const start = (label, args) => {
    const child = run(label, [...args, '--server', server.url]);
    children.push(child);
    return child;
  };
  const file = randomFile('cli-send.bin', FILE_BYTES);

  before(async () => {
    server = await startServer({ name: 'cli-send' });
  });

  let browser;

  after(async () => {
    await browser?.close();
    for (const child of children) child.kill();
    if (server) await server.stopCleanly();
  });

  test('a 24 MiB file goes across byte-exact with progress on both sides', async () => {
    const out = freshDir('cli-send-out');
    const sender = start('send', ['send', file.file]);
    const code = await sender.waitFor((e) => e.event === 'code', 'the code');
    assert.match(code.code, /^\d{1,3}-[a-z]+-[a-z]+-[a-z]+$/);
    assert.equal(code.command, `natter receive ${code.code}`);
    assert.equal(code.sha256, file.sha256);
    const receiver = start('receive', ['receive', code.code, '--out', out]);
    const done = await receiver.waitFor((e) => e.event === 'done', 'done');
    assert.deepEqual(await receiver.exited, { code: 0, signal: null }, receiver.stderr);
    assert.deepEqual(await sender.exited, { code: 0, signal: null }, sender.stderr);
    assert.equal(done.sha256, file.sha256);
    assert.equal(done.bytes, FILE_BYTES);
    assert.equal(done.path, path.join(out, 'cli-send.bin'));
    assert.equal(sha256(done.path), file.sha256);
    assert.deepEqual(fs.readdirSync(out), ['cli-send.bin'], 'no part file or sidecar left');
    for (const side of [receiver, sender]) {
      // On loopback: host candidates (a remote one may be learned from its check first: prflx).
      const { pair, ...start } = side.events.find((e) => e.event === 'start');
      assert.deepEqual(start, { event: 'start', file: 'cli-send.bin', size: FILE_BYTES, offset: 0, path: 'direct' });
      assert.ok(pair.length === 2 && pair.every((type) => type === 'host' || type === 'prflx'), JSON.stringify(pair));
    }
    assertProgress(receiver.events, FILE_BYTES);
    assertProgress(sender.events, FILE_BYTES);
    const sent = sender.events.find((e) => e.event === 'done');
    assert.deepEqual([sent.sha256, sent.bytes, sent.sent], [file.sha256, FILE_BYTES, FILE_BYTES]);
    // The room is an SFU room (serve's default), yet send and receive
    // stay peer to peer: the SFU's socket saw none of it, nor did TURN.
    const metrics = await server.metrics();
    assert.ok(metrics.has('natter_sfu_connections'), 'the server runs its SFU');
    const through = ['natter_sfu_datagrams_received', 'natter_sfu_relay_received', 'natter_turn_relayed_to_peer_bytes_total'];
    assert.deepEqual(
      through.map((name) => [name, metrics.get(name)]),
      through.map((name) => [name, 0]),
    );
    console.log(`loopback: receiver ${(done.rate / MIB).toFixed(1)} MiB/s, sender ${(sent.rate / MIB).toFixed(1)} MiB/s`);
  });

  test('a wrong code, a code nobody waits on, a typo and no server end with clear errors; three wrong codes stop the sender', async () => {
    const sender = start('send-wrong', ['send', file.file]);
    const { code } = await sender.waitFor((e) => e.event === 'code', 'the code');
    const [nameplate, ...words] = code.split('-');
    const wrong = `${nameplate}-${words[0]}-${words[1]}-${words[2] === 'zebra' ? 'yak' : 'zebra'}`;
    const out = freshDir('cli-send-wrong');
    const guess = start('receive-wrong', ['receive', wrong, '--out', out]);
    assert.equal((await guess.exited).code, 1);
    assert.match(guess.stderr, /natter receive: the sender refused: wrong code/);
    await sender.waitFor((e) => e.event === 'wrong-code', 'the wrong code noticed');
    assert.ok(!sender.events.some((e) => e.event === 'start'), 'nothing was sent');
    const nobody = start('receive-nobody', ['receive', `${(Number(nameplate) % 999) + 1}-${words.join('-')}`, '--out', out, '--wait', '2']);
    assert.equal((await nobody.exited).code, 1);
    assert.match(nobody.stderr, /no sender is waiting on code \d+-…/);
    assert.ok(!nobody.stderr.includes(words.join('-')), 'the secret words are not echoed');
    const typo = run('receive-typo', ['receive', `${nameplate}-${words[0]}-${words[1]}x-${words[2]}`]);
    assert.equal((await typo.exited).code, 1);
    assert.match(typo.stderr, /not a natter code: .* is not a word/);
    const noServer = run('receive-noserver', ['receive', code, '--server', 'http://127.0.0.1:1']);
    assert.equal((await noServer.exited).code, 1);
    assert.match(noServer.stderr, /cannot connect to ws:\/\/127\.0\.0\.1:1\/ws.*is `natter serve` running/);
    // A third wrong code stops the sender: nobody goes on guessing.
    for (const n of [2, 3]) {
      const again = start(`receive-wrong${n}`, ['receive', wrong, '--out', out]);
      assert.equal((await again.exited).code, 1);
    }
    assert.equal((await sender.exited).code, 1);
    assert.match(sender.stderr, /natter send: 3 receivers gave a wrong code/);
    // The server's log has the room, never the words.
    assert.ok(!fs.readFileSync(server.logPath, 'utf8').includes(words.join('-')), 'the code is not in the server log');
  });

  test('a receiver killed mid-transfer resumes from its part file', async () => {
    // Larger, so the kill lands well before the end even on a loaded machine.
    const big = randomFile('cli-send-resume.bin', RESUME_BYTES);
    const out = freshDir('cli-send-resume');
    const sender = start('send-resume', ['send', big.file]);
    const { code } = await sender.waitFor((e) => e.event === 'code', 'the code');
    const first = start('receive-cut', ['receive', code, '--out', out]);
    await first.waitFor((e) => e.event === 'progress' && e.bytes >= 4 * MIB, '4 MiB received');
    first.kill();
    assert.equal((await first.exited).signal, 'SIGKILL');
    assert.ok(!first.events.some((e) => e.event === 'done'), 'cut before the end');
    const sidecar = JSON.parse(fs.readFileSync(path.join(out, 'cli-send-resume.bin.natter-part.json'), 'utf8'));
    assert.deepEqual([sidecar.size, sidecar.sha256], [RESUME_BYTES, big.sha256]);
    assert.ok(sidecar.have >= 3 * MIB, JSON.stringify(sidecar));

    const second = start('receive-resume', ['receive', code, '--out', out]);
    const done = await second.waitFor((e) => e.event === 'done', 'done after resuming');
    assert.deepEqual(await second.exited, { code: 0, signal: null }, second.stderr);
    const resumed = second.events.find((e) => e.event === 'start');
    assert.ok(resumed.offset >= sidecar.have, JSON.stringify(resumed));
    assert.equal(done.sha256, big.sha256);
    assert.equal(sha256(done.path), big.sha256);
    assert.deepEqual(fs.readdirSync(out), ['cli-send-resume.bin']);
    const sent = await sender.waitFor((e) => e.event === 'done', 'the sender done');
    assert.equal(sent.sha256, big.sha256);
    assert.equal(sent.sent, RESUME_BYTES - resumed.offset, 'only the rest was sent the second time');
    const starts = sender.events.filter((e) => e.event === 'start');
    assert.deepEqual(starts.map((s) => s.offset), [0, resumed.offset]);
    assert.deepEqual(await sender.exited, { code: 0, signal: null }, sender.stderr);
  });

  test('a browser receives a file from natter send by its code', async () => {
    browser = await launchBrowser();
    const small = randomFile('cli-send-browser.bin', BROWSER_BYTES);
    const sender = start('send-browser', ['send', small.file]);
    const { code } = await sender.waitFor((e) => e.event === 'code', 'the code');
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${server.url}/receive.html#${code}`);
    const state = await until(() => page.evaluate(() => ['verified', 'mismatch', 'failed'].includes(window.natterReceive.state) && window.natterReceive), {
      timeout: 60000,
      what: 'the page to receive the file',
      describe: () => page.evaluate(() => JSON.stringify(window.natterReceive)).then((s) => `${s} ${problems.join('; ')}`),
    });
    assert.equal(state.state, 'verified', JSON.stringify(state));
    const received = await page.evaluate(async () => {
      const { transfer } = window.natterReceive;
      const digest = await crypto.subtle.digest('SHA-256', await transfer.blob.arrayBuffer());
      const link = document.querySelector('[data-testid="receive-link"]');
      return {
        name: transfer.name,
        size: transfer.blob.size,
        sha256: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''),
        download: link.hidden ? null : link.download,
      };
    });
    assert.deepEqual(received, { name: 'cli-send-browser.bin', size: BROWSER_BYTES, sha256: small.sha256, download: 'cli-send-browser.bin' });
    const sent = await sender.waitFor((e) => e.event === 'done', 'the sender done');
    assert.deepEqual([sent.sha256, sent.sent], [small.sha256, BROWSER_BYTES], 'verified by the page');
    assertProgress(sender.events, BROWSER_BYTES);
    assert.deepEqual(await sender.exited, { code: 0, signal: null }, sender.stderr);
    assert.deepEqual(problems, []);
  });

  test('a browser given a wrong code is refused and says so', async () => {
    browser ??= await launchBrowser();
    const sender = start('send-browser-wrong', ['send', file.file]);
    const { code } = await sender.waitFor((e) => e.event === 'code', 'the code');
    const [nameplate, ...words] = code.split('-');
    const wrong = `${nameplate}-${words[0]}-${words[1]}-${words[2] === 'zebra' ? 'yak' : 'zebra'}`;
    const page = await browser.newPage();
    await page.goto(`${server.url}/receive.html#${wrong}`);
    const state = await until(() => page.evaluate(() => window.natterReceive.state === 'failed' && window.natterReceive), {
      timeout: 30000,
      what: 'the page to be refused',
      describe: () => page.evaluate(() => JSON.stringify(window.natterReceive)),
    });
    assert.match(state.error, /the sender refused: wrong code/);
    assert.match(await page.textContent('#receive-error'), /wrong code/);
    await sender.waitFor((e) => e.event === 'wrong-code', 'the wrong code noticed');
    sender.kill();
  });
});
