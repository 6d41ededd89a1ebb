"""aiortc offers video in one codec to an echo server that reflects it,
for the codec cells of tests/peer/interop.mjs. Runs under the venv of
scripts/setup (target/py).

    aiortc_codec.py URL --address A --codec h264 [--fmtp REGEX]... [--frames N]

aiortc's synthetic 640x480 video goes out on one sendrecv transceiver
whose codec preferences hold only the entries of
RTCRtpSender.getCapabilities('video') with mimeType video/CODEC whose
parameters match every --fmtp (and rtx); the complete offer is POSTed
to URL, the answer applied, and N reflected frames decoded. Prints one
JSON line and exits 0: {"ok": true, "answered": [...], "frames": N,
"sizes": [...]} or, when aiortc has no such codec,
{"missing": "..."}; exits 1 with what went wrong.
"""

import argparse
import asyncio
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aioice.ice  # noqa: E402
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import VideoStreamTrack  # noqa: E402

from aiortc_echo import CONFIG, post, within  # noqa: E402


def parameters(codec):
    return ";".join(f"{k}={v}" for k, v in codec.parameters.items())


def answered_codecs(sdp):
    """The encoding names of the answer's video section, in order."""
    video = next((part for part in sdp.split("\nm=")[1:] if part.startswith("video")), "")
    payloads = video.split("\n", 1)[0].split()[3:]
    names = dict(re.findall(r"^a=rtpmap:(\d+) ([^/\s]+)/", video, re.M))
    return [names.get(pt, pt) for pt in payloads]


async def check(args):
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    wanted = [c for c in capabilities if c.mimeType.lower() == f"video/{args.codec}"
              and all(re.search(p, parameters(c)) for p in args.fmtp)]
    if not wanted:
        same = [parameters(c) or "(no fmtp)" for c in capabilities if c.mimeType.lower() == f"video/{args.codec}"]
        listed = ", ".join(dict.fromkeys(c.mimeType.split("/")[1] for c in capabilities))
        return {"missing": f"aiortc's RTCRtpSender.getCapabilities('video') has {args.codec} only as {', '.join(same)}" if same
                else f"aiortc's RTCRtpSender.getCapabilities('video') has no {args.codec} (has {listed})"}
    pc = RTCPeerConnection(CONFIG)
    try:
        transceiver = pc.addTransceiver(VideoStreamTrack(), direction="sendrecv")
        transceiver.setCodecPreferences(wanted + [c for c in capabilities if c.mimeType.lower() == "video/rtx"])
        reflected = asyncio.get_running_loop().create_future()
        pc.on("track", lambda track: reflected.done() or reflected.set_result(track))
        await pc.setLocalDescription(await pc.createOffer())
        answer = await asyncio.get_running_loop().run_in_executor(
            None, post, args.url, {"type": "offer", "sdp": pc.localDescription.sdp})
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        answered = answered_codecs(answer["sdp"])
        track = await within(reflected, "the reflected video track", 10)
        async def decoded(count):
            return [await track.recv() for _ in range(count)]

        frames = await within(decoded(args.frames), f"{args.frames} decoded frames of the reflected video", 20)
        return {"ok": True, "offered": [f"{c.mimeType} {parameters(c)}" for c in wanted], "answered": answered,
                "frames": len(frames), "sizes": sorted({f"{f.width}x{f.height}" for f in frames})}
    finally:
        await pc.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--address", required=True, help="the one ICE host address")
    parser.add_argument("--codec", required=True, help="vp8, h264, vp9, av1")
    parser.add_argument("--fmtp", action="append", default=[], help="a regular expression the codec's parameters match")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    # aioice never gathers 127.0.0.1 nor, by itself, only the one address (aiortc_echo.py).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.address]
    try:
        print(json.dumps(asyncio.run(check(args))), flush=True)
    except Exception as e:  # noqa: BLE001 - the matrix reads the message
        sys.exit(f"aiortc_codec.py: {e}")


if __name__ == "__main__":
    main()
