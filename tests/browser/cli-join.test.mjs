// Issue 14: `natter join`, natter-client's participant, in a room with a
// Chromium page on the web client. The page decodes the CLI's looped
// VP8 file (`--video`), chat goes both ways, a 2 MiB file
// sent by the CLI (`--send-file`) is verified by the page, a 2 MiB file
// from the page is saved byte-exact by the CLI (`--save-dir`), and the
// CLI leaving (`/quit`) removes its tile at once. A page joining after
// the CLI offers to it; after a server restart the CLI joins afresh and
// reconnects; a server gone for longer than --reconnect-timeout ends it
// with an error, as do refused tokens and bad URLs.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ARTIFACTS,
  NATTER_BIN,
  chat,
  forgiveOutage,
  join,
  launchBrowser,
  mediaStats,
  openParticipant,
  problemsOf,
  randomFile,
  receivedFile,
  startNatter,
  startServer,
  until,
} from './harness.mjs';

const ROOM = 'cli';
const FILE_BYTES = 2 * 1024 * 1024;

/** A 2 s 320x240 VP8 IVF (FFmpeg's test pattern, a keyframe a second) in target/browser. */
function vp8File() {
  const file = path.join(ARTIFACTS, 'cli-join.ivf');
  try {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-t', '2', '-c:v', 'libvpx', '-g', '30', '-b:v', '300k', file]);
  } catch (e) {
    throw new Error(`ffmpeg could not make a VP8 file (scripts/setup installs it): ${e.message}`);
  }
  return file;
}

/** `natter join URL --room cli --json ARGS`, its log named after the server and `label`. */
function startCli(server, args, label = 'cli') {
  return startNatter(`${server.name}.${label}`, ['join', server.url, '--room', ROOM, '--json', ...args]);
}

describe('natter join with a browser', () => {
  let server;
  let browser;
  let page;
  let cli;
  const outgoing = randomFile('cli-to-page.bin', FILE_BYTES);
  const saveDir = path.join(ARTIFACTS, 'cli-join-saved');

  before(async () => {
    fs.rmSync(saveDir, { recursive: true, force: true });
    browser = await launchBrowser();
    server = await startServer({ name: 'cli-join', args: ['--mesh'] });
  });

  after(async () => {
    cli?.kill();
    await browser?.close();
    if (server) await server.stopCleanly();
  });

  test('the CLI joins, connects, chats and trades files with the page', async () => {
    page = await openParticipant(browser, server, { room: ROOM, name: 'Alice' });
    await join(page);
    cli = startCli(server, ['--name', 'Robot', '--send-file', outgoing.file, '--save-dir', saveDir, '--video', vp8File()]);
    const joined = await cli.waitFor((e) => e.event === 'joined', 'joined');
    assert.equal(joined.room, ROOM);
    assert.equal(joined.name, 'Robot');
    const cliId = joined.id;
    await cli.waitFor((e) => e.event === 'peer-joined' && e.id === page.id && e.name === 'Alice', 'Alice in the room');
    // The page shows the CLI's tile, and both sides connect.
    await page.page.waitForSelector(`[data-testid="tile"][data-peer-id="${cliId}"]`, { timeout: 15000 });
    await cli.waitFor((e) => e.event === 'connection' && e.id === page.id && e.state === 'connected', 'connected to Alice');
    await until(
      () => page.page.evaluate((id) => window.natter.peers.get(id)?.pc.connectionState === 'connected', cliId),
      { what: 'the page connected to the CLI' },
    );

    // --video: the page decodes the CLI's VP8 at its size, past the file's
    // length (60 frames), so the loop goes on.
    let stats;
    await until(
      async () => {
        stats = (await mediaStats(page.page))[cliId];
        return stats && stats.framesDecoded > 75;
      },
      { timeout: 30000, what: "the page decoding the CLI's video", describe: () => JSON.stringify(stats) },
    );
    assert.deepEqual([stats.frameWidth, stats.frameHeight], [320, 240]);

    // Chat, page to CLI and CLI to page.
    await chat(page, [], 'hello from the browser');
    const said = await cli.waitFor((e) => e.event === 'chat' && e.text === 'hello from the browser', 'chat from Alice');
    assert.equal(said.from, page.id);
    assert.equal(said.name, 'Alice');
    cli.type('hello from the terminal');
    await page.page
      .locator(`[data-testid="chat-message"][data-from="${cliId}"]`, { hasText: 'hello from the terminal' })
      .waitFor({ timeout: 15000 });

    // --send-file: sent once connected, verified by the page.
    await page.page
      .locator('[data-testid="transfer"][data-direction="receive"]', { hasText: 'cli-to-page.bin' })
      .and(page.page.locator('[data-state="verified"], [data-state="mismatch"], [data-state="failed"]'))
      .waitFor({ timeout: 60000 });
    const got = await receivedFile(page, 'cli-to-page.bin');
    assert.deepEqual({ sha256: got.sha256, size: got.size, state: got.state }, { sha256: outgoing.sha256, size: FILE_BYTES, state: 'verified' });
    const sent = await cli.waitFor((e) => e.event === 'file-sent' || e.event === 'file-failed', 'the page answered the file');
    assert.deepEqual({ event: sent.event, verified: sent.verified, to: sent.to, sha256: sent.sha256 }, { event: 'file-sent', verified: true, to: page.id, sha256: outgoing.sha256 });

    // A file from the page, saved byte-exact by the CLI.
    const incoming = randomFile('page-to-cli.bin', FILE_BYTES);
    await page.page.setInputFiles('[data-testid="file-input"]', incoming.file);
    const received = await cli.waitFor((e) => e.event === 'file-received' || e.event === 'file-failed', 'a file from Alice', 60000);
    assert.equal(received.event, 'file-received', JSON.stringify(received));
    assert.equal(received.verified, true);
    assert.equal(received.sha256, incoming.sha256);
    const saved = fs.readFileSync(received.path);
    assert.equal(path.dirname(received.path), saveDir);
    assert.equal(saved.length, FILE_BYTES);
    assert.equal(createHash('sha256').update(saved).digest('hex'), incoming.sha256);
    await page.page
      .locator('[data-testid="transfer"][data-direction="send"][data-state="sent"]', { hasText: 'page-to-cli.bin' })
      .waitFor({ timeout: 30000 });

    // Leaving removes the CLI's tile at once (peer-left, not a timeout).
    const left = Date.now();
    cli.type('/quit');
    await page.page.waitForSelector(`[data-testid="tile"][data-peer-id="${cliId}"]`, { state: 'detached', timeout: 5000 });
    const exit = await cli.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, `natter join exit (log: ${cli.logPath})`);
    assert.ok(Date.now() - left < 5000, 'the tile went before any heartbeat timeout');
    assert.ok(cli.events.some((e) => e.event === 'left'));
    assert.deepEqual(problemsOf([page]), []);
  });

  test('a page joining after the CLI offers to it; the CLI comes back after a server restart and gives up on a server gone', async () => {
    cli = startCli(server, ['--name', 'Robot2'], 'cli2');
    const first = await cli.waitFor((e) => e.event === 'joined', 'joined');
    const bob = await openParticipant(browser, server, { room: ROOM, name: 'Bob' });
    await join(bob);
    await cli.waitFor((e) => e.event === 'connection' && e.id === bob.id && e.state === 'connected', 'connected to Bob');
    await chat(bob, [], 'hi robot');
    await cli.waitFor((e) => e.event === 'chat' && e.from === bob.id && e.text === 'hi robot', 'chat from Bob');
    cli.type('hi bob');
    await bob.page.locator(`[data-testid="chat-message"][data-from="${first.id}"]`, { hasText: 'hi bob' }).waitFor({ timeout: 15000 });

    // The server restarts on the same ports and forgets the room: the CLI
    // reconnects, finds its session gone, joins afresh and connects to
    // Bob's new session again.
    const { secret } = server;
    await server.stop();
    await cli.waitFor((e) => e.event === 'reconnecting', 'reconnecting');
    server = await startServer({ name: 'cli-join', ports: server.ports, secret, args: ['--mesh'] });
    const again = await cli.waitFor((e) => e.event === 'joined' && e.id !== first.id, 'joined afresh', 30000);
    assert.equal(again.resumed, false);
    const bobAgain = await until(() => bob.page.evaluate(() => window.natter.connection === 'connected' && window.natter.id), { what: 'Bob back' });
    await cli.waitFor((e) => e.event === 'connection' && e.id === bobAgain && e.state === 'connected', 'connected to Bob again', 30000);
    bob.id = bobAgain;
    await chat(bob, [], 'welcome back');
    await cli.waitFor((e) => e.event === 'chat' && e.from === bobAgain && e.text === 'welcome back', 'chat after the restart');

    // The server goes away for good: the CLI gives up after
    // --reconnect-timeout (30 s here) is too long to wait, so a second CLI
    // with 2 s shows the error.
    const quick = startCli(server, ['--name', 'Quick', '--reconnect-timeout', '2'], 'quick');
    await quick.waitFor((e) => e.event === 'joined', 'joined');
    cli.type('/quit');
    await cli.exited;
    await bob.context.close();
    await server.stop();
    const exit = await quick.exited;
    assert.equal(exit.code, 1);
    assert.match(quick.stderr, /natter join: the server at ws:\/\/[^ ]+ is gone/);
    server = await startServer({ name: 'cli-join', ports: server.ports, secret, args: ['--mesh'] });
    forgiveOutage([bob]);
  });

  test('clear errors: a refused token names its code, a server that is not there says so', async () => {
    const secured = await startServer({ name: 'cli-join-token', dev: false });
    try {
      const run = (args) =>
        new Promise((resolve) => {
          const child = spawn(NATTER_BIN, ['join', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
          let err = '';
          child.stderr.on('data', (d) => (err += d));
          child.once('exit', (code) => resolve({ code, err }));
        });
      const noToken = await run([secured.url, '--room', ROOM]);
      assert.equal(noToken.code, 1);
      assert.match(noToken.err, /token-required/);
      const bad = await run([secured.url, '--room', ROOM, '--token', 'not.a.token']);
      assert.match(bad.err, /token-invalid/);
      const other = await run([secured.url, '--room', ROOM, '--token', secured.token('elsewhere')]);
      assert.match(other.err, /token-invalid/);
      const gone = await run(['http://127.0.0.1:1', '--room', ROOM]);
      assert.equal(gone.code, 1);
      assert.match(gone.err, /cannot connect to ws:\/\/127\.0\.0\.1:1\/ws/);
      const badUrl = await run(['ftp://x', '--room', ROOM]);
      assert.match(badUrl.err, /bad server URL/);
      // With a good token it joins (and leaves on SIGTERM).
      const ok = startCli({ name: 'cli-join-token', url: secured.url }, ['--token', secured.token(ROOM)]);
      await ok.waitFor((e) => e.event === 'joined', 'joined with a token');
      ok.kill();
    } finally {
      await secured.stop();
    }
  });
});
