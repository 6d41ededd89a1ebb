"""Media between aiortc and natter-io (issue 5, acceptance 4 for 2 and 3):
aiortc sends its synthetic 640x480 video (VP8, then H.264) and Opus to
natter's record example, and ffprobe reads the files natter wrote; natter's
ivf-send example sends VP8 from an IVF file and Opus from an Ogg file to
aiortc, which decodes them.

Run by scripts/test-peer inside a network namespace with only `lo`:

    target/py/bin/python -m unittest tests/peer/test_aiortc_media.py

Needs the venv target/py (aiortc), ffmpeg, and the examples built
(`cargo build --release -p natter-io --examples`); scripts/setup and
scripts/test-peer provide them.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request
from pathlib import Path

import aioice.ice
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
# aiortc's synthetic sources: 640x480 video at 30 frames/s, and silence.
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

# aioice never gathers 127.0.0.1 (shared TESTING.md).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests" / "peer"))
import example_process  # noqa: E402 (a module of this directory)
EXAMPLES = Path(os.environ.get("NATTER_EXAMPLES", REPO / "target" / "release" / "examples"))
ARTIFACTS = REPO / "target" / "peer" / "aiortc-media"


def tool(name):
    path = shutil.which(name)
    if not path:
        raise AssertionError(f'{name} is missing: install it with "apt-get install ffmpeg" (scripts/setup does)')
    return path


def probe(file, kind):
    """ffprobe's view of the first stream of `kind` ('v' or 'a'), frames and packets counted."""
    out = subprocess.run(
        [tool("ffprobe"), "-v", "error", "-count_frames", "-count_packets", "-select_streams", f"{kind}:0",
         "-show_entries", "stream=codec_name,width,height,nb_read_frames,nb_read_packets", "-of", "json", str(file)],
        check=True, capture_output=True, text=True,
    ).stdout
    streams = json.loads(out)["streams"]
    if not streams:
        raise AssertionError(f"ffprobe finds no {kind} stream in {file}")
    return streams[0]


class Example:
    """An example of crates/natter-io on a free port, its log in target/peer/aiortc-media."""

    def __init__(self, name, log_name, args):
        self.log_path = ARTIFACTS / f"{log_name}.log"
        self.process, self.log, self.url = example_process.start(EXAMPLES / name, self.log_path, args, subprocess.PIPE)

    def post(self, path, body):
        request = urllib.request.Request(f"{self.url}{path}", json.dumps(body).encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=15) as r:
            return json.loads(r.read())

    def status(self):
        with urllib.request.urlopen(f"{self.url}/status", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process.stdout.close()
        self.log.close()


async def offer_to(example, pc):
    """aiortc's offer (complete: aiortc gathers before it returns) to `/offer`, and natter's answer applied."""
    await pc.setLocalDescription(await pc.createOffer())
    loop = asyncio.get_running_loop()
    offer = {"type": "offer", "sdp": pc.localDescription.sdp}
    answer = await loop.run_in_executor(None, example.post, "/offer", offer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    return answer["sdp"]


class AiortcMediaTest(unittest.TestCase):
    def setUp(self):
        tool("ffmpeg")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def record(self, codec, file, codec_name):
        frames = 60
        out = Path(tempfile.mkdtemp(prefix=f"record-{codec}-", dir=ARTIFACTS))
        recorder = Example("record", f"record-{codec}", ["--out", str(out), "--frames", str(frames)])

        async def run():
            pc = RTCPeerConnection()
            try:
                video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
                wanted = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in (f"video/{codec}", "video/rtx")]
                video.setCodecPreferences(wanted)
                pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
                await offer_to(recorder, pc)
                loop = asyncio.get_running_loop()
                return await asyncio.wait_for(loop.run_in_executor(None, recorder.process.wait), 30)
            finally:
                await pc.close()

        try:
            code = asyncio.run(run())
            self.assertEqual(code, 0, f"the recorder exited cleanly; see {recorder.log_path}")
            summary = json.loads(recorder.process.stdout.read().strip().splitlines()[-1])
            print(f"natter: {json.dumps(summary)}", file=sys.stderr)
            self.assertEqual(summary["errors"], [])
            self.assertEqual(summary["video_frames"], frames)
            video = probe(out / file, "v")
            print(f"ffprobe {file}: {video}", file=sys.stderr)
            self.assertEqual(video["codec_name"], codec_name)
            self.assertEqual((video["width"], video["height"]), (640, 480))
            self.assertGreaterEqual(int(video["nb_read_frames"]), frames)
            audio = probe(out / "audio.ogg", "a")
            print(f"ffprobe audio.ogg: {audio}", file=sys.stderr)
            self.assertEqual(audio["codec_name"], "opus")
            self.assertGreaterEqual(int(audio["nb_read_frames"]), 50, f"ffprobe decodes at least 50 Opus frames (1 s): {audio}")
        finally:
            recorder.stop()

    def test_vp8_camera_and_opus_recorded_by_natter(self):
        self.record("vp8", "video.ivf", "vp8")

    def test_h264_camera_and_opus_recorded_by_natter(self):
        self.record("h264", "video.h264", "h264")

    def test_natter_sends_ivf_and_ogg_that_aiortc_decodes(self):
        video_file = ARTIFACTS / "send.ivf"
        audio_file = ARTIFACTS / "send.ogg"
        ffmpeg = tool("ffmpeg")
        subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "3",
                        "-c:v", "libvpx", "-g", "30", "-b:v", "500k", str(video_file)], check=True)
        subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
                        "-c:a", "libopus", "-b:a", "32k", str(audio_file)], check=True)
        sender = Example("ivf-send", "ivf-send", ["--video", str(video_file), "--audio", str(audio_file)])

        async def run():
            pc = RTCPeerConnection()
            tracks = {}
            pc.on("track", lambda track: tracks.setdefault(track.kind, track))
            try:
                pc.addTransceiver("video", direction="recvonly")
                pc.addTransceiver("audio", direction="recvonly")
                await offer_to(sender, pc)
                self.assertEqual(set(tracks), {"video", "audio"})

                async def frames(track, count):
                    got = []
                    while len(got) < count:
                        got.append(await track.recv())
                    return got

                video, audio = await asyncio.wait_for(
                    asyncio.gather(frames(tracks["video"], 30), frames(tracks["audio"], 50)), 20)
                return video, audio
            finally:
                await pc.close()

        try:
            video, audio = asyncio.run(run())
            print(f"natter: {json.dumps(sender.status())}", file=sys.stderr)
            self.assertEqual({(f.width, f.height) for f in video}, {(320, 240)}, "every decoded frame is 320x240")
            self.assertEqual({f.sample_rate for f in audio}, {48000})
        finally:
            sender.stop()


if __name__ == "__main__":
    unittest.main()
