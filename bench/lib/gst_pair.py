#!/usr/bin/python3
"""The GStreamer halves of bench/connect (issue 17): webrtcbin
(Debian's GStreamer 1.22) through the Peer of tests/peer/gst_echo.py.
Prints one figure per line on stdout, like the other peer halves; notes
go to stderr.

    gst_pair.py connect [--runs N] [--warmup W] [--address A]...
        Two webrtcbins in one process, candidates trickled between them:
        ms per run from create-offer until the data channel "bench" is
        open on both sides.

    gst_pair.py answer [--runs N] [--warmup W] [--address A]... -- CMD ARG...
        webrtcbin answers an offerer run as CMD, which speaks the
        JSON-lines protocol at the top of bench/lib/chromium_pair.mjs on
        its stdin and stdout (natter's connect_bench): ms per run from
        "start" until both sides' channel is open. Its pipeline exists
        before the clock starts, as the page's RTCPeerConnection does.

In both, webrtcbin answers a=setup:active (the DTLS client), as the
browsers do. With `--address`, only webrtcbin's UDP candidates on those
addresses go to the peer (libnice gathers on every interface, IPv6
link-local and ICE-TCP included). libnice gathers nothing on `lo`: run
this where an interface has an address (bench/connect's veth
namespace). Runs under the system's Python, whose `gi` sees Debian's
GStreamer (shared TESTING.md).
"""

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside gst_echo.py
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "peer"))
import gst_echo  # noqa: E402 (after the path)
from gst_echo import Gst  # noqa: E402


def note(text):
    print(f"gst_pair: {text}", file=sys.stderr, flush=True)


def kept(candidate, addresses):
    """Whether a candidate line of webrtcbin's goes to the peer."""
    fields = candidate.split()
    return len(fields) > 4 and fields[2].upper() == "UDP" and (not addresses or fields[4] in addresses)


def open_channels(peer):
    """How many of the channels `peer` watches are open (under its lock)."""
    return sum(info["state"] == "open" for info in peer.channels.values())


def new_peer(name, on_candidate):
    """A started webrtcbin whose trickled candidates go to on_candidate(mline, candidate or None)."""
    peer = gst_echo.Peer(name)
    peer.webrtc.connect("on-ice-candidate", lambda _, mline, candidate: on_candidate(mline, candidate))
    peer.webrtc.connect(
        "notify::ice-gathering-state",
        lambda webrtc, _: webrtc.get_property("ice-gathering-state") == gst_echo.GstWebRTC.WebRTCICEGatheringState.COMPLETE
        and on_candidate(None, None),
    )
    peer.webrtc.connect("on-data-channel", lambda _, channel: peer.watch(channel, lambda *a: None))
    peer.start()
    return peer


def connect_once(addresses):
    """ms from create-offer to the channel open in both webrtcbins."""
    peers = {}

    def to_other(name):
        def relay(mline, candidate):
            if candidate is not None and kept(candidate, addresses):
                other = peers["answerer" if name == "offerer" else "offerer"]
                other.webrtc.emit("add-ice-candidate", mline, candidate)
        return relay

    peers["offerer"] = new_peer("offerer", to_other("offerer"))
    peers["answerer"] = new_peer("answerer", to_other("answerer"))
    offerer, answerer = peers["offerer"], peers["answerer"]
    try:
        channel = offerer.webrtc.emit("create-data-channel", "bench", None)
        offerer.watch(channel, lambda *a: None)
        start = time.perf_counter()
        offer = offerer.create("offer")
        offerer.set_description(True, "offer", offer)
        answerer.set_description(False, "offer", offer)
        answer = answerer.create("answer")
        answerer.set_description(True, "answer", answer)
        offerer.set_description(False, "answer", answer)
        for peer in (offerer, answerer):
            peer.wait(lambda p=peer: open_channels(p) >= 1, f"the {peer.pipeline.get_name()}'s channel to open")
        return (time.perf_counter() - start) * 1000
    finally:
        offerer.stop()
        answerer.stop()


class Offerer:
    """CMD, the offerer of the JSON-lines protocol, on pipes."""

    def __init__(self, cmd):
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lock = threading.Lock()

    def send(self, message):
        with self.lock:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()

    def receive(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the offerer exited ({self.process.wait()}; see its stderr)")
        return json.loads(line)

    def expect(self, kind):
        message = self.receive()
        if message.get("type") != kind:
            raise RuntimeError(f"the offerer sent {json.dumps(message)[:200]}, expected {kind!r}")
        return message

    def close(self):
        self.process.stdin.close()
        try:
            return self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def answer_once(offerer, addresses):
    """ms from "start" until the offerer's and webrtcbin's channels are open."""
    offerer.expect("ready")
    mids = []
    # webrtcbin trickles while it sets its answer, before the offerer has
    # it: those candidates wait for the answer.
    waiting = []
    lock = threading.Lock()

    def trickle(mline, candidate):
        if candidate is None:
            message = {"type": "end-of-candidates"}
        elif kept(candidate, addresses):
            message = {"type": "candidate", "candidate": candidate, "sdpMid": mids[mline], "sdpMLineIndex": mline}
        else:
            return
        with lock:
            if waiting is not None:
                waiting.append(message)
                return
        offerer.send(message)

    peer = new_peer("answerer", trickle)
    try:
        start = time.perf_counter()
        offerer.send({"type": "start"})
        offer = offerer.expect("offer")["sdp"]
        mids.extend(re.findall(r"^a=mid:(\S+)", offer, re.M))
        peer.set_description(False, "offer", offer)
        answer = peer.create("answer")
        peer.set_description(True, "answer", answer)
        offerer.send({"type": "answer", "sdp": answer})
        with lock:
            for message in waiting:
                offerer.send(message)
            waiting = None
        while (message := offerer.receive())["type"] != "open":
            if message["type"] == "candidate":
                candidate = message["candidate"]
                line = candidate if candidate.startswith("candidate:") else f"candidate:{candidate}"
                peer.webrtc.emit("add-ice-candidate", message.get("sdpMLineIndex") or 0, line)
            elif message["type"] != "end-of-candidates":
                raise RuntimeError(f"the offerer sent {message['type']!r} before 'open'")
        peer.wait(lambda: open_channels(peer) >= 1, "webrtcbin's channel to open")
        ms = (time.perf_counter() - start) * 1000
        offerer.send({"type": "close"})
        return ms
    finally:
        peer.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["connect", "answer"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--address", action="append", help="send only webrtcbin's UDP candidates on this address")
    argv = sys.argv[1:]
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:len(argv) - len(cmd) - (1 if cmd or "--" in argv else 0)])
    if (args.mode == "answer") != bool(cmd):
        parser.error("answer needs the offerer's command after --, connect takes none")
    Gst.init(None)
    gst_echo.fail_without_elements()
    figures = []
    if args.mode == "connect":
        for run in range(args.warmup + args.runs):
            ms = connect_once(args.address)
            if run >= args.warmup:
                figures.append(ms)
    else:
        offerer = Offerer(cmd)
        try:
            for run in range(args.warmup + args.runs):
                ms = answer_once(offerer, args.address)
                if run >= args.warmup:
                    figures.append(ms)
        finally:
            code = offerer.close()
        if code != 0:
            sys.exit(f"gst_pair: the offerer exited with {code} after the last run")
    for ms in figures:
        print(f"{ms:.3f}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit(f"gst_pair: {e}")
