# namespace: lo
"""Renegotiation mid-call between aiortc and `natter echo`
(issue 16), both roles. One call per test carries video, later audio,
and data channels; each exchange changes one thing, and the test checks
that the change took effect on both sides while the rest of the call
carried on (the 'echo' channel echoes, reflected video keeps arriving):

- aiortc offers (`POST /connections/ID/offer`): a track added (a 440 Hz
  tone that natter reflects back), a second data channel, the video's
  direction changed to sendonly and back, a track removed (aiortc has
  no `removeTrack`: `replaceTrack(None)` and direction `recvonly`, which
  is what W3C `removeTrack` does).
- natter offers (`POST /connections/ID/negotiate`, the answer to
  `/answer`): natter adds an audio track (aiortc answers with its tone on
  it), opens a data channel, sets the video recvonly and back, removes
  its audio track.

Not here: an ICE restart. aiortc 1.16 cannot restart ICE either way: it
has no `restartIce` nor `createOffer(iceRestart)`, its ICE credentials
are fixed for the connection's life (RTCIceGatherer), and a remote offer
with new credentials is ignored (RTCIceTransport.start returns at once
when it ran before; remote candidates after end-of-candidates are
dropped), so it answers a restart with its old ufrag.

Run by scripts/test-peer inside a network namespace with only `lo`:

    scripts/test-peer tests/peer/test_aiortc_renegotiation.py

Needs the venv target/py (aiortc; scripts/setup makes it) and the
natter binary built (`cargo build --release -p natter-server`).
"""

import array
import asyncio
import fractions
import json
import math
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

try:
    import aioice.ice
    import av
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

    MISSING = None
    # aioice never gathers 127.0.0.1 (shared TESTING.md).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
except ImportError as error:
    MISSING = (f"aiortc is missing ({error}): run scripts/setup, or "
               "`python3 -m venv target/py && target/py/bin/pip install -r tests/requirements.txt`, "
               "and run this file with target/py/bin/python")
    AudioStreamTrack = VideoStreamTrack = object

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests" / "peer"))
import example_process  # noqa: E402 (a module of this directory)
NATTER = Path(os.environ.get("NATTER_BIN", REPO / "target" / "release" / "natter"))
ARTIFACTS = REPO / "target" / "peer" / "aiortc-renegotiation"
# Every wait on the call (frames, echoes, an HTTP exchange) gives up after this.
WAIT = 10


class SmallVideo(VideoStreamTrack):
    """aiortc's synthetic video at 320x240 (cheaper to encode than its 640x480)."""

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240)
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(AudioStreamTrack):
    """A 440 Hz sine at 48 kHz, 20 ms a frame, paced in real time like aiortc's silence."""

    RATE, SAMPLES, AMPLITUDE = 48000, 960, 8000

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if hasattr(self, "_timestamp"):
            self._timestamp += self.SAMPLES
            await asyncio.sleep(self._start + self._timestamp / self.RATE - time.time())  # real-time pacing of a live source
        else:
            self._start, self._timestamp = time.time(), 0
        samples = array.array("h", (int(self.AMPLITUDE * math.sin(2 * math.pi * 440 * (self._timestamp + i) / self.RATE))
                                    for i in range(self.SAMPLES)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(samples.tobytes())
        frame.pts, frame.sample_rate, frame.time_base = self._timestamp, self.RATE, fractions.Fraction(1, self.RATE)
        return frame


def peak(frame):
    """The largest absolute sample of a decoded s16 audio frame."""
    data = array.array("h")
    data.frombytes(bytes(frame.planes[0])[: frame.samples * len(frame.layout.channels) * 2])
    return max((abs(x) for x in data), default=0)


class Sink:
    """Reads a received track all the time (so nothing queues up), counting its frames."""

    def __init__(self, track, what):
        self.track, self.what = track, what
        self.frames = 0
        self.collected = None
        self.changed = asyncio.Event()
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        try:
            while True:
                frame = await self.track.recv()
                self.frames += 1
                if self.collected is not None:
                    self.collected.append(frame)
                self.changed.set()
        except MediaStreamError:
            pass

    async def more(self, count):
        """The next `count` frames received from now."""
        self.collected = []
        start = self.frames
        deadline = time.monotonic() + WAIT
        try:
            while len(self.collected) < count:
                self.changed.clear()
                left = deadline - time.monotonic()
                try:
                    await asyncio.wait_for(self.changed.wait(), max(left, 0))
                except asyncio.TimeoutError:
                    raise AssertionError(f"{count} more {self.what} frames in {WAIT} s: got {self.frames - start}") from None
            return self.collected
        finally:
            self.collected = None

    def stop(self):
        self.task.cancel()


class Echo:
    """`natter echo` (server mode) on a free port, its log in target/peer/aiortc-renegotiation."""

    def __init__(self, name):
        self.log_path = ARTIFACTS / f"{name}.log"
        self.process, self.log, self.url = example_process.start(NATTER, self.log_path, command=("echo",))

    def request(self, path, body=None):
        """(status, headers, JSON or None) of GET (no body) or POST `path`; an HTTP error fails with its body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data, {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as r:
                raw = r.read()
                return r.status, r.headers, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{'POST' if data else 'GET'} {path} {json.dumps(body)[:200]}: "
                                 f"{e.code} {e.read().decode(errors='replace')}") from None

    async def post(self, path, body):
        return await asyncio.get_running_loop().run_in_executor(None, self.request, path, body)

    async def connection(self):
        """The one connection in /status."""
        _, _, status = await asyncio.get_running_loop().run_in_executor(None, self.request, "/status")
        if len(status) != 1:
            raise AssertionError(f"one connection at natter: {json.dumps(status)}")
        return status[0]

    async def until(self, what, check):
        """Polls /status (no event to wait on) until `check(connection)` holds, for WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while True:
            connection = await self.connection()
            if check(connection):
                return connection
            if time.monotonic() > deadline:
                raise AssertionError(f"natter: {what} within {WAIT} s; /status: {json.dumps(connection)}")
            await asyncio.sleep(0.1)  # polls /status

    def log_tail(self, size=4000):
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-size:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def active_senders(connection, format):
    """natter's senders of `format` ('Vp8', 'Opus') that are sending (not paused by their direction)."""
    return [s for s in connection["media"]["senders"] if s["format"] == format and s["active"]]


def frames_received(connection):
    return sum(r["frames_received"] for r in connection["media"]["receivers"])


async def within(what, awaitable):
    try:
        return await asyncio.wait_for(awaitable, WAIT)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {WAIT} s waiting for {what}") from None


async def opened(channel):
    if channel.readyState != "open":
        ready = asyncio.get_running_loop().create_future()
        channel.once("open", lambda: ready.done() or ready.set_result(None))
        await within(f"data channel '{channel.label}' to open (readyState {channel.readyState})", ready)


class Call:
    """aiortc's side of one call with natter's echo: started by aiortc's offer, renegotiated by either side."""

    rounds = 0

    def __init__(self, test, echo):
        self.test, self.echo = test, echo
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN server: loopback only
        self.location = None
        self.natter_channels = {}
        self.channel_arrived = asyncio.Event()

        @self.pc.on("datachannel")
        def on_datachannel(channel):
            self.natter_channels[channel.label] = channel
            self.channel_arrived.set()

    async def start(self):
        """Video (VP8, sendrecv) and a channel 'echo': aiortc offers to /offer, natter answers."""
        pc = self.pc
        self.video = pc.addTransceiver(SmallVideo(), direction="sendrecv")
        self.video.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")])
        self.echo_channel = pc.createDataChannel("echo")
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers before it returns: a complete offer
        _, headers, answer = await self.echo.post("/offer", {"type": "offer", "sdp": pc.localDescription.sdp})
        self.location = headers.get("location")
        self.test.assertRegex(self.location or "", r"^/connections/\d+$", "the answer's Location names the connection")
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        await opened(self.echo_channel)
        self.test.assertEqual(self.video.currentDirection, "sendrecv")
        self.video_sink = Sink(self.video.receiver.track, "reflected video")

    async def aiortc_offers(self):
        """aiortc's new offer to /connections/ID/offer, natter's answer applied."""
        pc = self.pc
        await pc.setLocalDescription(await pc.createOffer())
        _, _, answer = await self.echo.post(f"{self.location}/offer", {"type": "offer", "sdp": pc.localDescription.sdp})
        self.test.assertEqual(answer["type"], "answer")
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        self.test.assertEqual(pc.signalingState, "stable")

    async def natter_offers(self, request, before_answer=lambda: None):
        """natter makes `request`'s change and offers; aiortc answers (after `before_answer()`)."""
        pc = self.pc
        _, _, offer = await self.echo.post(f"{self.location}/negotiate", request)
        self.test.assertEqual(offer["type"], "offer")
        await pc.setRemoteDescription(RTCSessionDescription(**offer))
        before_answer()
        await pc.setLocalDescription(await pc.createAnswer())
        status, _, _ = await self.echo.post(f"{self.location}/answer", {"type": "answer", "sdp": pc.localDescription.sdp})
        self.test.assertEqual(status, 204)
        self.test.assertEqual(pc.signalingState, "stable")
        return offer["sdp"]

    async def echoes(self, channel, count=10):
        """Text and binary messages on `channel` come back in order, byte-exact."""
        Call.rounds += 1
        arrived = asyncio.Queue()
        channel.on("message", arrived.put_nowait)
        try:
            sent = []
            for i in range(count):
                message = f"{channel.label} {Call.rounds}.{i}" if i % 2 else f"{channel.label} {Call.rounds}.{i}".encode() * 50
                channel.send(message)
                sent.append(message)
            got = [await within(f"echo {i + 1} of {count} on '{channel.label}'", arrived.get()) for i in range(count)]
            self.test.assertEqual(got, sent, f"every echo on '{channel.label}' comes back in order, byte-exact")
        finally:
            channel.remove_listener("message", arrived.put_nowait)

    async def video_flows(self, count=15):
        """`count` more reflected frames decode, at the size aiortc sends."""
        frames = await self.video_sink.more(count)
        self.test.assertEqual({(f.width, f.height) for f in frames}, {(320, 240)}, "natter reflects aiortc's 320x240 video")

    async def tone_returns(self, sink):
        """Half a second of reflected audio decodes, and it is the tone, not silence."""
        frames = await sink.more(25)
        self.test.assertEqual({f.sample_rate for f in frames}, {48000})
        self.test.assertTrue(all(f.samples > 0 for f in frames))
        loud = [f for f in frames if peak(f) > Tone.AMPLITUDE / 4]
        self.test.assertGreater(len(loud), len(frames) // 2,
                                f"the reflected audio carries the tone: peaks {[peak(f) for f in frames]}")

    async def close(self):
        for sink in (getattr(self, "video_sink", None), getattr(self, "audio_sink", None)):
            if sink:
                sink.stop()
        await self.pc.close()


class AiortcRenegotiationTest(unittest.TestCase):
    def setUp(self):
        if MISSING:
            self.fail(MISSING)

    def run_call(self, name, script):
        """Runs `script(call, echo)` against a fresh echo; a failure shows natter's /status and log."""
        echo = Echo(name)

        async def run():
            call = Call(self, echo)
            try:
                await call.start()
                await script(call, echo)
            except Exception as e:
                try:
                    status = json.dumps(await echo.connection())
                except Exception as x:
                    status = str(x)
                raise AssertionError(f"{e}\n--- natter's /status ---\n{status}\n"
                                     f"--- echo log (tail, all in {echo.log_path}) ---\n{echo.log_tail()}") from e
            finally:
                await call.close()

        started = time.monotonic()
        try:
            asyncio.run(run())
        finally:
            echo.stop()
            print(f"{name}: {time.monotonic() - started:.1f} s", file=sys.stderr)

    def test_aiortc_offers(self):
        async def script(call, echo):
            pc = call.pc
            await call.echoes(call.echo_channel)
            await call.video_flows()

            # 1. A track added: the tone on a new audio section, which natter reflects.
            pc.addTrack(Tone())
            audio = next(t for t in pc.getTransceivers() if t.kind == "audio")
            await call.aiortc_offers()
            self.assertEqual(audio.currentDirection, "sendrecv", "the audio section is negotiated sendrecv")
            self.assertNotEqual(audio.mid, call.video.mid)
            call.audio_sink = Sink(audio.receiver.track, "reflected audio")
            await call.tone_returns(call.audio_sink)
            await echo.until("one Opus sender active", lambda c: len(active_senders(c, "Opus")) == 1)
            await call.echoes(call.echo_channel)
            await call.video_flows()

            # A second data channel, on the association already there (no exchange needed).
            second = pc.createDataChannel("second")
            await opened(second)
            await call.echoes(second)
            await echo.until("'second' open", lambda c: any(
                ch["label"] == "second" and ch["state"] == "open" for ch in c["channels"].values()))

            # 2. The video's direction: aiortc only sends, natter stops sending video.
            received = frames_received(await echo.connection())
            call.video.direction = "sendonly"
            await call.aiortc_offers()
            self.assertEqual(call.video.currentDirection, "sendonly")
            await echo.until("no Vp8 sender active", lambda c: active_senders(c, "Vp8") == [])
            await echo.until("aiortc's video still arriving",
                             lambda c: frames_received(c) >= received + 15)
            await call.echoes(call.echo_channel)

            # 3. ... and back: natter reflects video again.
            call.video.direction = "sendrecv"
            await call.aiortc_offers()
            self.assertEqual(call.video.currentDirection, "sendrecv")
            await echo.until("one Vp8 sender active", lambda c: len(active_senders(c, "Vp8")) == 1)
            await call.video_flows()

            # 4. A track removed: what W3C removeTrack does (aiortc has none), the section
            # goes recvonly and natter stops receiving audio.
            self.assertEqual(len((await echo.connection())["media"]["receivers"]), 2, "natter receives video and audio")
            audio.sender.replaceTrack(None)
            audio.direction = "recvonly"
            await call.aiortc_offers()
            self.assertEqual(audio.currentDirection, "recvonly")
            await echo.until("only one receiver (video) left", lambda c: len(c["media"]["receivers"]) == 1)

            # Through all of it: both channels, the video, and natter's count of exchanges.
            await call.echoes(call.echo_channel)
            await call.echoes(second)
            await call.video_flows()
            natter = await echo.connection()
            self.assertEqual(natter["renegotiations"], 4, "natter answered four new offers")
            self.assertEqual(natter["state"], "connected")
            self.assertEqual(pc.connectionState, "connected")

        self.run_call("aiortc-offers", script)

    def test_natter_offers(self):
        async def script(call, echo):
            pc = call.pc
            await call.echoes(call.echo_channel)
            await call.video_flows()

            # 1. natter adds an audio track; aiortc puts its tone on that transceiver and answers.
            def send_tone():
                added = [t for t in pc.getTransceivers() if t.kind == "audio" and t.currentDirection is None]
                self.assertEqual(len(added), 1, "natter's offer brought one new audio transceiver")
                pc.addTrack(Tone())  # takes the transceiver without a track, making it sendrecv
                self.assertEqual(added[0].direction, "sendrecv")

            await call.natter_offers({"addTrack": "audio"}, send_tone)
            audio = next(t for t in pc.getTransceivers() if t.kind == "audio")
            self.assertEqual(audio.currentDirection, "sendrecv", "natter's audio section is negotiated sendrecv")
            call.audio_sink = Sink(audio.receiver.track, "reflected audio")
            await call.tone_returns(call.audio_sink)
            await echo.until("one Opus sender active", lambda c: len(active_senders(c, "Opus")) == 1)
            await call.echoes(call.echo_channel)
            await call.video_flows()

            # 2. natter opens a data channel: aiortc gets a 'datachannel' event, the channel echoes.
            await call.natter_offers({"dataChannel": "from-natter"})
            while "from-natter" not in call.natter_channels:
                call.channel_arrived.clear()
                await within("aiortc's 'datachannel' event for 'from-natter'", call.channel_arrived.wait())
            from_natter = call.natter_channels["from-natter"]
            await opened(from_natter)
            await call.echoes(from_natter)

            # 3. natter makes the video recvonly: aiortc only sends it, natter sends none.
            received = frames_received(await echo.connection())
            await call.natter_offers({"direction": {"mid": call.video.mid, "direction": "recvonly"}})
            self.assertEqual(call.video.currentDirection, "sendonly", "aiortc only sends video now")
            await echo.until("no Vp8 sender active", lambda c: active_senders(c, "Vp8") == [])
            await echo.until("aiortc's video still arriving", lambda c: frames_received(c) >= received + 15)

            # 4. ... and back.
            await call.natter_offers({"direction": {"mid": call.video.mid, "direction": "sendrecv"}})
            self.assertEqual(call.video.currentDirection, "sendrecv")
            await echo.until("one Vp8 sender active", lambda c: len(active_senders(c, "Vp8")) == 1)
            await call.video_flows()

            # 5. natter removes its audio track: aiortc's section becomes sendonly.
            await call.natter_offers({"removeTrack": audio.mid})
            self.assertEqual(audio.currentDirection, "sendonly", "aiortc only sends audio now")
            await echo.until("no Opus sender active", lambda c: active_senders(c, "Opus") == [])

            await call.echoes(call.echo_channel)
            await call.echoes(from_natter)
            await call.video_flows()
            natter = await echo.connection()
            self.assertEqual(natter["renegotiations"], 5, "aiortc answered natter's five offers")
            self.assertEqual(natter["state"], "connected")
            self.assertEqual(pc.connectionState, "connected")

        self.run_call("natter-offers", script)


if __name__ == "__main__":
    unittest.main()
