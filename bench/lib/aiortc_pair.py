"""The aiortc halves of bench/datachannel and bench/connect (issue 5).
Prints one figure per line on stdout, like the natter examples the
benches call. Runs under the venv of scripts/setup (target/py).

    aiortc_pair.py datachannel [--runs N] [--bytes B] [--message-size M]
                               [--buffer-low L] [--buffer-high H]
                               [--rtt MS --impair PATH]
                               [--chat-interval MS] [--chat-size B]
        Two RTCPeerConnections in one asyncio loop, one reliable ordered
        channel: per run one line `MB/s chat-p50-ms chat-p95-ms`: MB/s
        (10^6 bytes/s) from the first send to the last byte received,
        both read from the same clock, and the round trips of the small
        messages sent on a second channel every --chat-interval ms
        meanwhile, which the receiver echoes (bench/datachannel, issue
        15). With --rtt, each side's candidate in the SDP the other gets
        is a natter-impair proxy (PATH, impair_proxy.py) delaying by half
        the round trip each way, so either side's checks and data cross
        one proxy each way.

    aiortc_pair.py file --path FILE --out DIR [--runs N] [--message-size M]
                        [--buffer-low L] [--buffer-high H]
                        [--turn URL --turn-username U --turn-password P]
        The same, for a file (bench/send, issue 14): the sender reads FILE
        from disk in messages, the receiver writes them to DIR/NAME and
        the two SHA-256 digests must match; MB/s per run, from the first
        read to the last byte written and flushed.

    aiortc_pair.py offer
        The offerer of the JSON-lines protocol of chromium_pair.mjs
        (`answer` mode) on stdin and stdout. It stands in for natter's
        connect_bench so that bench/connect's hook can be checked before
        natter has one: bench/connect --natter-cmd "...aiortc_pair.py offer".

Both gather host candidates on 127.0.0.1 only (aioice skips it by
default) and use no STUN server (aiortc's default is a public one).
"""

import argparse
import asyncio
import hashlib
import json
import math
import os
import sys
import time

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

sys.dont_write_bytecode = True  # no __pycache__ in bench/lib
from impair_proxy import Proxies  # noqa: E402 (after the line above)

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
CONFIG = RTCConfiguration(iceServers=[])


async def connected_pair(config=CONFIG, labels=("bench",), proxies=None):
    """Two connected RTCPeerConnections, the offerer's reliable ordered
    channels of `labels` and the answerer's ends of them by label. With
    `proxies` (impair_proxy.Proxies), each side's candidate in the SDP
    the other gets is behind a proxy."""
    a = RTCPeerConnection(config)
    b = RTCPeerConnection(config)
    channels = [a.createDataChannel(label, ordered=True) for label in labels]
    loop = asyncio.get_running_loop()
    opened = [loop.create_future() for _ in labels]
    remote, all_remote = {}, loop.create_future()
    for channel, future in zip(channels, opened):
        channel.on("open", lambda f=future: f.done() or f.set_result(None))

    def on_datachannel(ch):
        remote[ch.label] = ch
        if len(remote) == len(labels) and not all_remote.done():
            all_remote.set_result(None)

    b.on("datachannel", on_datachannel)
    # aiortc gathers during setLocalDescription(): no trickle.
    await a.setLocalDescription(await a.createOffer())
    offer = a.localDescription
    if proxies:
        offer = RTCSessionDescription(sdp=await proxies.front(offer.sdp), type="offer")
    await b.setRemoteDescription(offer)
    await b.setLocalDescription(await b.createAnswer())
    answer = b.localDescription
    if proxies:
        answer = RTCSessionDescription(sdp=await proxies.front(answer.sdp), type="answer")
    await a.setRemoteDescription(answer)
    await asyncio.gather(*opened)
    await all_remote
    return a, b, channels, remote


async def transfer(channel, receiver, on_message, pump, buffer_low, done):
    """Runs one transfer: `pump` refills the channel on its
    bufferedamountlow event, `on_message` resolves `done` with the time
    the last byte arrived. The start and that end time."""
    receiver.on("message", on_message)
    channel.bufferedAmountLowThreshold = buffer_low
    channel.on("bufferedamountlow", pump)
    start = time.perf_counter()
    pump()
    return start, await done


def percentile(values, p):
    """The p-quantile of values, nearest rank; NaN without any."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1] if ordered else math.nan


async def datachannel_once(total, message_size, buffer_low, buffer_high, args):
    """One transfer with a chat channel beside it: MB/s and the chat
    round trips' p50 and p95 in ms."""
    async with Proxies(args.impair, args.rtt / 2) as proxies:
        pair = await connected_pair(CONFIG, ("bench", "chat"), proxies if args.rtt > 0 else None)
        return await transfer_with_chat(*pair, total, message_size, buffer_low, buffer_high, args)


async def transfer_with_chat(a, b, channels, remote, total, message_size, buffer_low, buffer_high, args):
    (channel, chat), receiver, echo = channels, remote["bench"], remote["chat"]
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    payload = os.urandom(message_size)
    received = 0
    sent = 0
    sent_at, round_trips = [], []
    all_echoed = loop.create_future()
    echo.on("message", echo.send)

    def on_echo(data):
        round_trips.append(time.perf_counter() - sent_at[int.from_bytes(data[:4], "big")])
        if done.done() and len(round_trips) == len(sent_at) and not all_echoed.done():
            all_echoed.set_result(None)

    chat.on("message", on_echo)

    async def chatter():
        while not done.done():
            message = bytearray(args.chat_size)
            message[:4] = len(sent_at).to_bytes(4, "big")
            sent_at.append(time.perf_counter())
            chat.send(bytes(message))
            await asyncio.sleep(args.chat_interval / 1000)

    def on_message(data):
        nonlocal received
        received += len(data)
        if received >= total and not done.done():
            done.set_result(time.perf_counter())

    def pump():
        # Keeps between buffer_low and buffer_high bytes queued: the
        # channel never starves and memory stays bounded.
        nonlocal sent
        while sent < total and channel.bufferedAmount <= buffer_high:
            n = min(message_size, total - sent)
            channel.send(payload if n == message_size else payload[:n])
            sent += n

    ticker = asyncio.ensure_future(chatter())
    start, end = await transfer(channel, receiver, on_message, pump, buffer_low, done)
    await ticker
    if len(round_trips) < len(sent_at):
        await all_echoed
    if received != total:
        raise RuntimeError(f"received {received} bytes, sent {total}")
    await a.close()
    await b.close()
    ms = [x * 1000 for x in round_trips]
    return total / (end - start) / 1e6, percentile(ms, 0.5), percentile(ms, 0.95)


async def file_once(path, out, message_size, buffer_low, buffer_high, config):
    a, b, (channel,), remote = await connected_pair(config)
    receiver = remote["bench"]
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    total = os.path.getsize(path)
    target = os.path.join(out, os.path.basename(path))
    written = 0
    sent_digest, received_digest = hashlib.sha256(), hashlib.sha256()

    def on_message(data):
        nonlocal written
        sink.write(data)
        received_digest.update(data)
        written += len(data)
        if written >= total and not done.done():
            sink.flush()
            done.set_result(time.perf_counter())

    def pump():
        while source.tell() < total and channel.bufferedAmount <= buffer_high:
            chunk = source.read(message_size)
            sent_digest.update(chunk)
            channel.send(chunk)

    with open(path, "rb") as source, open(target, "wb") as sink:
        start, end = await transfer(channel, receiver, on_message, pump, buffer_low, done)
    if written != total or sent_digest.digest() != received_digest.digest():
        raise RuntimeError(f"received {written} of {total} bytes, or a different SHA-256")
    os.remove(target)
    await a.close()
    await b.close()
    return total / (end - start) / 1e6


class Lines:
    """JSON lines on stdin and stdout, without blocking the loop."""

    def __init__(self):
        self.reader = None

    async def open(self):
        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self.reader), sys.stdin)

    async def read(self):
        """The next message, or None at the end of stdin."""
        line = await self.reader.readline()
        return json.loads(line) if line else None

    def write(self, msg):
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()


async def offer():
    lines = Lines()
    await lines.open()
    while await offer_once(lines):
        pass


async def offer_once(lines):
    """One run of the protocol; False when stdin ended instead."""
    pc = RTCPeerConnection(CONFIG)
    channel = pc.createDataChannel("bench")
    opened = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: opened.done() or opened.set_result(None))
    lines.write({"type": "ready"})
    msg = await lines.read()
    if msg is None:
        await pc.close()
        return False
    if msg["type"] != "start":
        raise ValueError(f"expected start, got {msg}")
    await pc.setLocalDescription(await pc.createOffer())
    lines.write({"type": "offer", "sdp": pc.localDescription.sdp})
    lines.write({"type": "end-of-candidates"})

    async def from_page():
        while True:
            msg = await lines.read()
            if msg is None:
                raise EOFError("stdin ended in the middle of a run")
            if msg["type"] == "answer":
                await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
            elif msg["type"] == "candidate" and msg["candidate"]:
                c = candidate_from_sdp(msg["candidate"].split(":", 1)[1])
                c.sdpMid, c.sdpMLineIndex = msg["sdpMid"], msg["sdpMLineIndex"]
                await pc.addIceCandidate(c)
            elif msg["type"] == "close":
                return
            elif msg["type"] not in ("candidate", "end-of-candidates"):
                raise ValueError(f"unexpected {msg}")

    page = asyncio.ensure_future(from_page())
    await asyncio.wait([page, opened], return_when=asyncio.FIRST_COMPLETED)
    if page.done():
        page.result()
        raise RuntimeError("the page closed before the channel opened")
    lines.write({"type": "open"})
    await page
    await pc.close()
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["datachannel", "file", "offer"])
    p.add_argument("--path", help="file mode: the file to send")
    p.add_argument("--out", help="file mode: the directory to write it in")
    p.add_argument("--turn", help="file mode: a TURN server URL (turn:HOST:PORT) to gather relay candidates from")
    p.add_argument("--turn-username")
    p.add_argument("--turn-password")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--bytes", type=int, default=50_000_000)
    p.add_argument("--message-size", type=int, default=16384)
    p.add_argument("--buffer-low", type=int, default=1 << 20)
    p.add_argument("--buffer-high", type=int, default=4 << 20)
    p.add_argument("--rtt", type=float, default=0, help="datachannel mode: round trip through natter-impair, ms")
    p.add_argument("--impair", help="datachannel mode: the natter-impair binary, for --rtt")
    p.add_argument("--chat-interval", type=float, default=50, help="datachannel mode: a chat message every this many ms")
    p.add_argument("--chat-size", type=int, default=100, help="datachannel mode: bytes per chat message")
    args = p.parse_args()
    if args.mode == "offer":
        asyncio.run(offer())
        return
    if args.mode == "file" and not (args.path and args.out):
        p.error("file mode needs --path and --out")
    config = CONFIG
    if args.turn:
        config = RTCConfiguration(iceServers=[RTCIceServer(args.turn, args.turn_username, args.turn_password)])
    for _ in range(args.runs):
        if args.mode == "file":
            mbps = asyncio.run(file_once(args.path, args.out, args.message_size, args.buffer_low, args.buffer_high, config))
            print(f"{mbps:.3f}", flush=True)
            continue
        if args.rtt > 0 and not args.impair:
            p.error("--rtt needs --impair PATH, the natter-impair binary")
        if args.chat_size < 4:
            p.error("--chat-size must be at least 4")
        figures = asyncio.run(datachannel_once(args.bytes, args.message_size, args.buffer_low, args.buffer_high, args))
        print(" ".join(f"{x:.3f}" for x in figures), flush=True)


if __name__ == "__main__":
    main()
