"""aiortc on both sides of the webrtc-echoes convention, for
tests/peer/aiortc.test.mjs. Runs under the venv of scripts/setup
(target/py, aiortc 1.16.0).

    aiortc_echo.py server --listen 127.0.0.1:PORT --address 127.0.0.1
        POST /offer with {"type":"offer","sdp":...} answers once
        gathering completed (aiortc gathers in setLocalDescription);
        `?setup=passive` makes aiortc the DTLS server. Every data channel
        message goes back on its channel with its type; the text
        `close-me` closes the channel instead. Audio and video are
        reflected: each track the offer brings is sent back (decoded and
        encoded again by aiortc), and the frames aiortc decoded are
        counted (`received`: video frames and size, audio frames and
        samples). GET /status: what aiortc saw of every connection, as
        JSON. GET /healthz.

    aiortc_echo.py client URL --address 127.0.0.1 [--messages N] [--seed S]
        Offers a reliable ordered channel `echo` and an unordered one with
        maxRetransmits 0, `lossy`; POSTs the complete offer to URL; checks
        that a seeded mix of N text and binary messages of 1 B to 256 KiB
        echoes back byte-exact and in order on `echo`, and 50 small ones
        sent one at a time on `lossy`; closes `lossy` and has the server
        close `echo` with `close-me`. With --media, also sends aiortc's
        synthetic 640x480 video and audio and checks that the server
        reflects them: 30 decoded frames of 640x480 and 50 of audio.
        Prints one JSON summary line of what it received and decoded
        (counts, sizes, samples) and exits 0, or exits 1 with what went
        wrong.

aioice never gathers 127.0.0.1 (shared TESTING.md): both modes replace
its host-address function with --address. No STUN server (aiortc's
default is a public one).
"""

import argparse
import asyncio
import json
import math
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack

CONFIG = RTCConfiguration(iceServers=[])
# Sizes on SCTP's and the browsers' boundaries, as natter's client sends.
EDGES = [1, 2, 1199, 1200, 1201, 16383, 16384, 16385, 65535, 65536, 65537, 262143, 262144, 262144]
MAX_SIZE = 262144
HIGH_WATER = 4 << 20
LOW_WATER = 1 << 20
TIMEOUT = 60


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    server = modes.add_parser("server")
    server.add_argument("--listen", required=True, help="HOST:PORT of the HTTP server")
    server.add_argument("--address", required=True, help="the one ICE host address")
    client = modes.add_parser("client")
    client.add_argument("url")
    client.add_argument("--address", required=True, help="the one ICE host address")
    client.add_argument("--messages", type=int, default=1000)
    client.add_argument("--unordered-messages", type=int, default=50)
    client.add_argument("--seed", type=int, default=1)
    client.add_argument("--media", action="store_true", help="also send video and audio and check their reflection")
    return parser.parse_args()


# ---- server ---------------------------------------------------------------------


class Server:
    """The answering side: one RTCPeerConnection per POST, on the asyncio
    loop; the HTTP server runs in a thread and hands each offer over."""

    def __init__(self, loop):
        self.loop = loop
        self.connections = []
        self.pcs = []

    async def answer(self, offer, setup):
        pc = RTCPeerConnection(CONFIG)
        entry = {"channels": {}, "errors": [], "states": [], "dtls_role": None}
        self.pcs.append(pc)
        self.connections.append(entry)

        @pc.on("connectionstatechange")
        def on_state():
            entry["states"].append(pc.connectionState)
            if pc.connectionState == "connected":
                entry["dtls_role"] = pc.sctp.transport._role
                entry["pair"] = nominated_pair(pc)

        relay = MediaRelay()
        entry["tracks"] = []
        entry["received"] = {}

        @pc.on("track")
        def on_track(track):
            # Before the answer: the track sent back makes the section sendrecv.
            entry["tracks"].append(track.kind)
            entry["received"][track.kind] = {"frames": 0}
            pc.addTrack(Counted(relay.subscribe(track), entry["received"][track.kind]))

        @pc.on("datachannel")
        def on_channel(channel):
            info = {
                "label": channel.label,
                "id": channel.id,
                "ordered": channel.ordered,
                "max_retransmits": channel.maxRetransmits,
                "messages": 0,
                "bytes": 0,
                "state": "open",
                "closed_by": None,
            }
            entry["channels"][f"{channel.label}#{channel.id}"] = info

            @channel.on("message")
            def on_message(message):
                if message == "close-me":
                    info["closed_by"] = "aiortc"
                    channel.close()
                    return
                info["messages"] += 1
                info["bytes"] += len(message.encode() if isinstance(message, str) else message)
                channel.send(message)

            @channel.on("close")
            def on_close():
                info["state"] = "closed"
                info["closed_by"] = info["closed_by"] or "peer"

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        if setup == "passive":
            # aiortc takes the client role unless its transport has one.
            pc.sctp.transport._set_role("server")
        await pc.setLocalDescription(await pc.createAnswer())
        entry["answer"] = pc.localDescription.sdp
        return {"type": "answer", "sdp": pc.localDescription.sdp}

    async def status(self):
        return json.dumps(self.connections)


class Counted(MediaStreamTrack):
    """Passes `track`'s decoded frames on, counting them in `stats`: frames,
    and the video's size or the audio's samples and sample rate."""

    def __init__(self, track, stats):
        super().__init__()
        self.kind = track.kind
        self.track = track
        self.stats = stats

    async def recv(self):
        frame = await self.track.recv()
        self.stats["frames"] += 1
        if self.kind == "video":
            self.stats["size"] = [frame.width, frame.height]
        else:
            self.stats["samples"] = self.stats.get("samples", 0) + frame.samples
            self.stats["sample_rate"] = frame.sample_rate
        return frame


def nominated_pair(pc):
    """The ICE pair aioice nominated, as 'address port type' strings."""
    connection = pc.sctp.transport.transport._connection
    pair = connection._nominated.get(1)
    if pair is None:
        return None
    describe = lambda c: f"{c.host} {c.port} {c.type}"
    return {"local": describe(pair.local_candidate), "remote": describe(pair.remote_candidate)}


def serve(args):
    loop = asyncio.new_event_loop()
    server = Server(loop)

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, kind, body):
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                return self.reply(200, "text/plain", "ok")
            if self.path == "/status":
                # Serialized on the loop, which owns what it describes.
                status = asyncio.run_coroutine_threadsafe(server.status(), loop).result(5)
                return self.reply(200, "application/json", status)
            self.reply(404, "text/plain", "not found")

        def do_POST(self):
            url = urlparse(self.path)
            if url.path != "/offer":
                return self.reply(404, "text/plain", "not found")
            try:
                offer = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                if offer.get("type") != "offer":
                    return self.reply(400, "text/plain", f'expected {{"type":"offer"}}, got {offer.get("type")!r}')
                setup = parse_qs(url.query).get("setup", [None])[0]
                answer = asyncio.run_coroutine_threadsafe(server.answer(offer, setup), loop).result(TIMEOUT)
            except Exception as e:  # noqa: BLE001 - any failure is the client's answer
                return self.reply(500, "text/plain", f"aiortc failed to answer: {e!r}")
            self.reply(200, "application/json", json.dumps(answer))

        def log_message(self, fmt, *args):
            print(f"http: {fmt % args}", file=sys.stderr)

    host, port = args.listen.rsplit(":", 1)
    httpd = ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(f"aiortc echo server on http://{args.listen}", file=sys.stderr, flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
        loop.run_until_complete(asyncio.gather(*(pc.close() for pc in server.pcs)))


# ---- client ---------------------------------------------------------------------


def message(size, rng):
    """Text (with multi-byte characters) or random bytes of exactly `size` bytes."""
    if rng.random() < 0.5:
        chars = ["a", "b", "z", "0", " ", "é", "€", "😀"]
        parts, n = [], 0
        while n + 4 < size:
            c = rng.choice(chars)
            parts.append(c)
            n += len(c.encode())
        return "".join(parts) + "x" * (size - n)
    return rng.randbytes(size)


def sizes(count, rng):
    out = EDGES[:count]
    while len(out) < count:
        out.append(max(1, min(MAX_SIZE, round(math.exp(rng.random() * math.log(MAX_SIZE))))))
    return out


class Echoed:
    """What came back on one channel and matched what was sent."""

    def __init__(self):
        self.messages = self.bytes = self.text = self.largest = 0

    def count(self, echo):
        size = len(echo.encode() if isinstance(echo, str) else echo)
        self.messages += 1
        self.bytes += size
        self.text += isinstance(echo, str)
        self.largest = max(self.largest, size)

    def summary(self):
        return {"messages": self.messages, "bytes": self.bytes, "text": self.text, "binary": self.messages - self.text, "largest": self.largest}


def mismatch(sent, got):
    if type(sent) is not type(got) or len(sent) != len(got):
        kind = lambda m: "text" if isinstance(m, str) else "binary"
        return f"sent {kind(sent)} of {len(sent)}, got {kind(got)} of {len(got)}"
    if sent != got:
        return "the content differs"
    return None


async def within(awaitable, what, seconds=TIMEOUT):
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise RuntimeError(f"timed out after {seconds} s waiting for {what}") from None


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"POST {url}: {e.code} {e.read().decode(errors='replace')}") from None


async def check(args):
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    pc = RTCPeerConnection(CONFIG)
    try:
        echo = pc.createDataChannel("echo")
        lossy = pc.createDataChannel("lossy", ordered=False, maxRetransmits=0)
        inbox = {"echo": asyncio.Queue(), "lossy": asyncio.Queue()}
        events = {name: {"open": loop.create_future(), "close": loop.create_future()} for name in inbox}
        for channel in (echo, lossy):
            name = channel.label
            channel.on("message", inbox[name].put_nowait)
            channel.on("open", lambda name=name: events[name]["open"].done() or events[name]["open"].set_result(None))
            channel.on("close", lambda name=name: events[name]["close"].done() or events[name]["close"].set_result(None))

        reflected = {}
        if args.media:
            pc.addTrack(VideoStreamTrack())
            pc.addTrack(AudioStreamTrack())

            @pc.on("track")
            def on_track(track):
                reflected[track.kind] = track

        await pc.setLocalDescription(await pc.createOffer())
        answer = await loop.run_in_executor(None, post, args.url, {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp})
        if answer.get("type") != "answer":
            raise RuntimeError(f"expected an answer, got {answer!r}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await within(asyncio.gather(events["echo"]["open"], events["lossy"]["open"]), "'echo' and 'lossy' to open")
        connect_ms = (time.perf_counter() - started) * 1000

        # 'echo': the whole mix, the buffered amount kept under HIGH_WATER.
        rng = random.Random(args.seed)
        all_sizes = sizes(args.messages, rng)
        low = asyncio.Event()
        echo.bufferedAmountLowThreshold = LOW_WATER
        echo.on("bufferedamountlow", low.set)
        in_flight = []

        async def send_all():
            for size in all_sizes:
                while echo.bufferedAmount > HIGH_WATER:
                    low.clear()
                    await low.wait()
                m = message(size, rng)
                in_flight.append(m)
                echo.send(m)

        burst_started = time.perf_counter()
        sender = asyncio.ensure_future(send_all())
        reliable = Echoed()
        for i in range(len(all_sizes)):
            got = await within(inbox["echo"].get(), f"echo {i} of {len(all_sizes)} on 'echo'")
            sent = in_flight[i]
            why = mismatch(sent, got)
            if why:
                raise RuntimeError(f"echo {i} on 'echo' is not the message sent: {why}")
            reliable.count(got)
        await sender
        burst_ms = (time.perf_counter() - burst_started) * 1000

        # 'lossy': one at a time.
        rng = random.Random(args.seed + 1)
        unordered = Echoed()
        for i in range(args.unordered_messages):
            m = message(1 + rng.randrange(1000), rng)
            lossy.send(m)
            got = await within(inbox["lossy"].get(), f"the echo of message {i} on 'lossy' within 2 s", 2)
            why = mismatch(m, got)
            if why:
                raise RuntimeError(f"echo {i} on 'lossy' is not the message sent: {why}")
            unordered.count(got)

        media = None
        if args.media:
            if set(reflected) != {"video", "audio"}:
                raise RuntimeError(f"the server sent back {sorted(reflected)}, not video and audio")

            async def frames(track, count):
                return [await track.recv() for _ in range(count)]

            video, audio = await within(
                asyncio.gather(frames(reflected["video"], 30), frames(reflected["audio"], 50)),
                "30 reflected video frames and 50 audio frames",
                20,
            )
            sizes_seen = sorted({(f.width, f.height) for f in video})
            if sizes_seen != [(640, 480)]:
                raise RuntimeError(f"the reflected video is {sizes_seen}, not 640x480")
            media = {
                "video_frames": len(video),
                "video_sizes": [list(size) for size in sizes_seen],
                "audio_frames": len(audio),
                "audio_samples": sum(f.samples for f in audio),
                "audio_sample_rates": sorted({f.sample_rate for f in audio}),
            }

        dtls_role = pc.sctp.transport._role
        pair = nominated_pair(pc)
        lossy.close()
        await within(events["lossy"]["close"], "'lossy' to close (aiortc closing it)", 10)
        echo.send("close-me")
        await within(events["echo"]["close"], "'echo' to close (the server closing it on close-me)", 10)
        for name, queue in inbox.items():
            if not queue.empty():
                raise RuntimeError(f"unexpected messages on '{name}' after its check")
        return {
            "ok": True,
            "messages": reliable.messages + unordered.messages,
            "reliable": {**reliable.summary(), "ms": round(burst_ms)},
            "unordered": unordered.summary(),
            "media": media,
            "dtls_role": dtls_role,
            "selected_pair": pair,
            "connect_ms": round(connect_ms),
            "ms": round((time.perf_counter() - started) * 1000),
        }
    finally:
        await pc.close()


def main():
    args = parse_args()
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.address]
    if args.mode == "server":
        return serve(args)
    try:
        summary = asyncio.run(check(args))
    except Exception as e:  # noqa: BLE001 - the test reads the message
        sys.exit(f"aiortc_echo.py client: {e}")
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
