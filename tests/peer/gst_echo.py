#!/usr/bin/python3
"""GStreamer's webrtcbin (Debian's GStreamer 1.22) on both sides of the
webrtc-echoes convention, for tests/peer/test_gstreamer.py.

    gst_echo.py --listen 127.0.0.1:PORT [--address A]...   (server mode)
        POST /offer with {"type":"offer","sdp":...} answers once
        webrtcbin's gathering completed. `?setup=passive` (or `active`)
        rewrites the a=setup of webrtcbin's answer before webrtcbin
        applies it, and webrtcbin takes the DTLS role that says (passive:
        the server); without it webrtcbin answers active. Every data
        channel message goes back on its channel with its type; the text
        `close-me` closes the channel instead. On each video and audio
        section of the offer webrtcbin sends its own VP8 (videotestsrc,
        320x240, 30 frames/s) and Opus (audiotestsrc), and decodes and
        counts what arrives. GET /status: every connection as JSON.
        GET /healthz.

    gst_echo.py --client URL [--address A]... [--messages N] [--max-size BYTES] [--seed S]
                [--video-codec vp8|h264|vp9]
        (client mode, the options of natter's echo --client)
        webrtcbin offers a data channel `echo` and sends the same VP8
        (or, with --video-codec, H.264 from openh264enc, packetization
        mode 1, or VP9 profile 0 from vp9enc, as the only video codec)
        and Opus; POSTs the complete offer to URL and applies the answer
        (its a=setup decides webrtcbin's DTLS role); sends a seeded mix
        of N text and binary messages of 1 byte to BYTES and checks that
        each echoes back byte-exact, type included, and in order; then
        waits until it decoded 30 video frames and 50 audio buffers of
        what the server sends. Prints one JSON summary line and exits 0,
        or exits 1 with what went wrong.

Both report webrtcbin's DTLS role (its DTLS encoder's `is-client`) and
the states it went through, both certificates as PEM (webrtcbin's own
and the peer's) with the fingerprints of both SDPs, and what webrtcbin
decoded: video frames with the caps' width and height, audio buffers
with their rate and channels. With `--address`, the SDP webrtcbin sends
keeps only its candidates on those addresses (libnice gathers on every
interface, IPv6 link-local and ICE-TCP included).

Runs under the system's Python (/usr/bin/python3): `gi` and GStreamer's
introspection data come from Debian's packages (python3-gi,
gir1.2-gst-plugins-bad-1.0, gir1.2-gst-plugins-base-1.0), which the
tests' venv does not see (see test_gstreamer.py). libnice gathers
nothing on `lo`: run it where an interface has an address (the `veth`
namespace of scripts/lib/namespace.sh).
"""

import argparse
import json
import math
import queue
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402 (after require_version)

# The element each part needs, and the Debian package that has it.
ELEMENTS = {
    "webrtcbin": "gstreamer1.0-plugins-bad",
    "nicesrc": "gstreamer1.0-nice",
    "dtlssrtpenc": "gstreamer1.0-plugins-bad",
    "sctpenc": "gstreamer1.0-plugins-bad",
    "vp8enc": "gstreamer1.0-plugins-good",
    "rtpvp8pay": "gstreamer1.0-plugins-good",
    "opusenc": "gstreamer1.0-plugins-base",
    "rtpopuspay": "gstreamer1.0-plugins-good",
    "videotestsrc": "gstreamer1.0-plugins-base",
    "audiotestsrc": "gstreamer1.0-plugins-base",
}
# What webrtcbin sends on a section of each kind, its payload type filled
# in. A keyframe every second, so that a receiver that joins late (or
# counts for a few seconds) sees one without asking.
SENDERS = {
    "video": ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
              "vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay picture-id-mode=15-bit ! "
              "capsfilter caps=application/x-rtp,payload={pt}"),
    "audio": ("audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=48000,channels=2 ! opusenc ! "
              "rtpopuspay ! capsfilter caps=application/x-rtp,payload={pt}"),
}
# What it offers (client mode), and the caps of each codec in an SDP.
OFFERED_PT = {"video": 96, "audio": 111}
CODECS = {
    "video": ("VP8", "application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload={pt},"
              "rtcp-fb-nack=true,rtcp-fb-nack-pli=true,rtcp-fb-ccm-fir=true"),
    "audio": ("OPUS", "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload={pt},"
              "encoding-params=(string)2"),
}
# The client's --video-codec: its sender and its caps in the offer, and
# the elements they need beyond ELEMENTS. (No AV1: GStreamer 1.22 has no
# RTP payloader for it; rtpav1pay is in gst-plugins-rs.)
VIDEO_CODECS = {
    "vp8": (SENDERS["video"], CODECS["video"][1], []),
    "h264": ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
             "openh264enc gop-size=30 ! h264parse ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
             # openh264's constrained baseline at level 1.3 (42c00d) is within
             # the offered 42e01f, which webrtcbin otherwise refuses to link.
             "capssetter caps=application/x-rtp,profile-level-id=(string)42e01f ! "
             "capsfilter caps=application/x-rtp,payload={pt}",
             "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload={pt},"
             "packetization-mode=(string)1,profile-level-id=(string)42e01f,"
             "rtcp-fb-nack=true,rtcp-fb-nack-pli=true,rtcp-fb-ccm-fir=true",
             ["openh264enc", "openh264dec", "h264parse", "rtph264pay", "rtph264depay", "capssetter"]),
    "vp9": ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
            "vp9enc deadline=1 keyframe-max-dist=30 ! rtpvp9pay picture-id-mode=15-bit ! "
            "capsfilter caps=application/x-rtp,payload={pt}",
            "application/x-rtp,media=video,encoding-name=VP9,clock-rate=90000,payload={pt},profile-id=(string)0,"
            "rtcp-fb-nack=true,rtcp-fb-nack-pli=true,rtcp-fb-ccm-fir=true",
            ["vp9enc", "vp9dec", "rtpvp9pay", "rtpvp9depay"]),
}
RECEIVERS = {"VP8": ("video", "rtpvp8depay ! vp8dec ! fakesink name=out"),
             "H264": ("video", "rtph264depay ! h264parse ! openh264dec ! fakesink name=out"),
             "VP9": ("video", "rtpvp9depay ! vp9dec ! fakesink name=out"),
             "OPUS": ("audio", "rtpopusdepay ! opusdec ! fakesink name=out")}
TIMEOUT = 30
# At most this many bytes of the client's messages wait for their echo.
WINDOW = 1 << 20


def fail_without_elements():
    missing = sorted({package for element, package in ELEMENTS.items() if not Gst.ElementFactory.find(element)})
    if missing:
        sys.exit(f"gst_echo.py: GStreamer elements are missing: install {' '.join(missing)} "
                 "(scripts/setup does)")


class Peer:
    """One webrtcbin in a pipeline of its own, with what it saw: data
    channel counts, decoded media, errors. GStreamer calls back from its
    own threads; data channel actions (echoes, closes) run in order on
    one worker thread, never inside those callbacks."""

    def __init__(self, name):
        self.pipeline = Gst.Pipeline.new(name)
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        self.lock = threading.Condition()
        self.errors = []
        self.channels = {}
        self.received = {}
        self.gathered = threading.Event()
        # webrtcbin's DTLS elements (GstDtlsSrtpEnc and Dec): the role, the
        # states and both certificates. Not its GstWebRTCDTLSTransport: in
        # 1.22 the `sctp-transport` getter hands Python a floating object
        # that pygobject sinks and frees when it drops it.
        self.dtls_elements = {}
        self.dtls_states = []
        self.actions = queue.Queue()
        threading.Thread(target=self.run_actions, daemon=True).start()
        self.pipeline.get_bus().set_sync_handler(self.on_bus_message)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("pad-added", self.on_pad_added)
        self.pipeline.connect("deep-element-added", self.on_element_added)

    # -- GStreamer's threads --

    def on_bus_message(self, bus, message):
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            with self.lock:
                self.errors.append(f"{message.src.get_name()}: {error.message} ({debug})")
                self.lock.notify_all()
        return Gst.BusSyncReply.DROP

    def on_element_added(self, _pipeline, _bin, element):
        factory = element.get_factory()
        name = factory and factory.get_name()
        if name in ("dtlssrtpenc", "dtlssrtpdec"):
            with self.lock:
                self.dtls_elements.setdefault(name, element)
            if name == "dtlssrtpenc":
                element.connect("notify::connection-state", self.on_dtls_state)

    def on_dtls_state(self, element, _):
        with self.lock:
            self.dtls_states.append(element.get_property("connection-state").value_nick)
            self.lock.notify_all()

    def on_gathering(self, webrtc, _):
        if webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            self.gathered.set()

    def on_pad_added(self, webrtc, pad):
        """Decodes each received stream into a fakesink, counting buffers."""
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        encoding = pad.get_current_caps().get_structure(0).get_string("encoding-name")
        kind, description = RECEIVERS[encoding.upper()]
        decoder = Gst.parse_bin_from_description(description, True)
        self.pipeline.add(decoder)
        decoder.sync_state_with_parent()
        pad.link(decoder.get_static_pad("sink"))
        with self.lock:
            self.received[kind] = {"frames": 0, "encoding": encoding.upper()}
        decoder.get_by_name("out").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_decoded, kind)

    def on_decoded(self, pad, _, kind):
        caps = pad.get_current_caps().get_structure(0)
        with self.lock:
            stats = self.received[kind]
            stats["frames"] += 1
            if kind == "video":
                stats["width"], stats["height"] = caps.get_int("width")[1], caps.get_int("height")[1]
            else:
                stats["rate"], stats["channels"] = caps.get_int("rate")[1], caps.get_int("channels")[1]
            self.lock.notify_all()
        return Gst.PadProbeReturn.OK

    def watch(self, channel, on_message):
        """Counts `channel`'s messages in /status and hands each, as str or
        bytes, to `on_message`."""
        key = f"{channel.get_property('label')}#{channel.get_property('id')}"
        info = {"label": channel.get_property("label"), "ordered": channel.get_property("ordered"),
                "max_retransmits": channel.get_property("max-retransmits"), "messages": 0, "bytes": 0,
                "state": "connecting", "closed_by": None}

        def message(data):
            with self.lock:
                info["messages"] += 1
                info["bytes"] += len(data.encode() if isinstance(data, str) else data)
            on_message(channel, info, data)

        def state(value):
            with self.lock:
                info["state"] = value
                if value == "closed":
                    info["closed_by"] = info["closed_by"] or "peer"
                self.lock.notify_all()

        channel.connect("on-message-string", lambda _, text: message(text or ""))
        channel.connect("on-message-data", lambda _, data: message(data.get_data() if data else b""))
        channel.connect("on-open", lambda _: state("open"))
        channel.connect("on-close", lambda _: state("closed"))
        channel.connect("on-error", lambda _, error: self.error(f"channel {key}: {error.message}"))
        with self.lock:
            self.channels[key] = info
        return info

    # -- the caller's threads --

    def error(self, text):
        with self.lock:
            self.errors.append(text)
            self.lock.notify_all()

    def run_actions(self):
        while True:
            action = self.actions.get()
            try:
                action()
            except GLib.Error as e:
                self.error(f"data channel: {e.message}")

    def add_sender(self, kind, pt, video_codec="vp8"):
        """webrtcbin sends VP8 (or `video_codec` of VIDEO_CODECS) or Opus
        as payload type `pt` on a new sendrecv transceiver whose codec is
        set, so the SDP does not wait for caps to reach webrtcbin."""
        sender, caps = (VIDEO_CODECS[video_codec][:2] if kind == "video" else (SENDERS[kind], CODECS[kind][1]))
        source = Gst.parse_bin_from_description(sender.format(pt=pt), True)
        self.pipeline.add(source)
        pad = self.webrtc.request_pad_simple("sink_%u")
        source.get_static_pad("src").link(pad)
        transceiver = pad.get_property("transceiver")
        transceiver.set_property("codec-preferences", Gst.Caps.from_string(caps.format(pt=pt)))
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDRECV)

    def start(self):
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError(f"the pipeline does not start: {self.errors}")

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)

    def call(self, signal, *args):
        """Emits one of webrtcbin's promise signals and waits for its reply."""
        promise = Gst.Promise.new()
        self.webrtc.emit(signal, *args, promise)
        if promise.wait() != Gst.PromiseResult.REPLIED:
            raise RuntimeError(f"webrtcbin {signal}: no reply")
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            raise RuntimeError(f"webrtcbin {signal}: {reply.get_value('error').message}")
        return reply

    def set_description(self, local, kind, sdp):
        parsed = GstSdp.SDPMessage.new_from_text(sdp)
        if parsed[0] != GstSdp.SDPResult.OK:
            raise RuntimeError(f"unparsable {kind} SDP: {parsed[0]}")
        sdp_type = {"offer": GstWebRTC.WebRTCSDPType.OFFER, "answer": GstWebRTC.WebRTCSDPType.ANSWER}[kind]
        description = GstWebRTC.WebRTCSessionDescription.new(sdp_type, parsed[1])
        self.call("set-local-description" if local else "set-remote-description", description)

    def create(self, kind):
        """createOffer or createAnswer: the SDP as text."""
        reply = self.call(f"create-{kind}", None)
        return reply.get_value(kind).sdp.as_text()

    def complete_local_description(self, addresses):
        """The local description once gathering completed, its candidates
        in it: those on `addresses` only, when there are any."""
        if not self.gathered.wait(TIMEOUT):
            raise RuntimeError(f"webrtcbin's ICE gathering did not complete in {TIMEOUT} s (libnice gathers nothing on lo)")
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        if addresses:
            kept = lambda line: not line.startswith("a=candidate:") or line.split()[4] in addresses  # noqa: E731
            sdp = "\r\n".join(filter(kept, sdp.split("\r\n")))
        print(f"local description:\n{sdp}", file=sys.stderr, flush=True)
        return sdp

    def wait(self, condition, what, seconds=TIMEOUT):
        """Waits until `condition()` (called under the lock) holds; fails on
        a pipeline error or after `seconds`."""
        deadline = time.monotonic() + seconds
        with self.lock:
            while not condition():
                if self.errors:
                    raise RuntimeError(f"while waiting for {what}: {self.errors}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"timed out after {seconds} s waiting for {what}")
                self.lock.wait(left)

    def report(self):
        """What this webrtcbin saw, as JSON-ready values."""
        def fingerprint(which):
            description = self.webrtc.get_property(f"{which}-description")
            found = description and re.search(r"^a=fingerprint:(\S+ \S+)", description.sdp.as_text(), re.M)
            return found and found.group(1)

        with self.lock:
            encoder, decoder = self.dtls_elements.get("dtlssrtpenc"), self.dtls_elements.get("dtlssrtpdec")
            # `pem` holds the private key too; only the certificate goes out.
            certificate = decoder and re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?",
                                                decoder.get_property("pem"), re.S)
            return {
                "connection_state": self.webrtc.get_property("connection-state").value_nick,
                "ice_state": self.webrtc.get_property("ice-connection-state").value_nick,
                "dtls": encoder and {
                    "role": "client" if encoder.get_property("is-client") else "server",
                    "states": list(self.dtls_states),
                    "certificate": certificate and certificate.group(0),
                    "fingerprint": fingerprint("local"),
                    "remote_certificate": decoder.get_property("peer-pem"),
                    "remote_fingerprint": fingerprint("remote"),
                },
                "channels": json.loads(json.dumps(self.channels)),
                "received": json.loads(json.dumps(self.received)),
                "errors": list(self.errors),
            }


def send(channel, message):
    if isinstance(message, str):
        channel.send_string_full(message)
    else:
        channel.send_data_full(GLib.Bytes.new(message))


# ---- server ---------------------------------------------------------------------


def sections(sdp):
    """The m-sections of an SDP, each as (kind, text)."""
    return [(part.split(" ", 1)[0], part) for part in sdp.split("\nm=")[1:]]


class Answerer:
    """The answering side: one Peer per offer."""

    def __init__(self):
        self.peers = []
        self.lock = threading.Lock()

    def answer(self, offer, setup, addresses):
        peer = Peer(f"connection{len(self.peers)}")
        with self.lock:
            self.peers.append(peer)
        peer.webrtc.connect("on-data-channel", lambda _, channel: peer.watch(channel, lambda *a: self.echo(peer, *a)))
        # Our own media on each of the offer's sections, with the offer's payload type.
        for kind, text in sections(offer):
            if kind in CODECS:
                match = re.search(rf"^a=rtpmap:(\d+) {CODECS[kind][0]}/", text, re.M | re.I)
                if not match:
                    raise RuntimeError(f"the offer's {kind} section has no {CODECS[kind][0]}")
                peer.add_sender(kind, int(match.group(1)))
        peer.start()
        peer.set_description(False, "offer", offer)
        answer = peer.create("answer")
        if setup:
            answer = re.sub(r"^a=setup:\w+", f"a=setup:{setup}", answer, flags=re.M)
        peer.set_description(True, "answer", answer)
        return peer.complete_local_description(addresses)

    def echo(self, peer, channel, info, message):
        if message == "close-me":
            with peer.lock:
                info["closed_by"] = "webrtcbin"
            peer.actions.put(channel.close)
        else:
            peer.actions.put(lambda: send(channel, message))

    def status(self):
        with self.lock:
            peers = list(self.peers)
        return [peer.report() for peer in peers]


def serve(args):
    answerer = Answerer()

    class Handler(BaseHTTPRequestHandler):
        def respond(self, status, body):
            """`body` as JSON when it is a list or a dict, as text otherwise;
            HTTP/1.0, so the connection's close ends it."""
            json_body = isinstance(body, (list, dict))
            self.send_response(status)
            self.send_header("content-type", "application/json" if json_body else "text/plain")
            self.end_headers()
            self.wfile.write((json.dumps(body) if json_body else body).encode())

        def do_GET(self):
            pages = {"/healthz": lambda: "ok", "/status": answerer.status}
            if self.path not in pages:
                return self.respond(404, "not found")
            self.respond(200, pages[self.path]())

        def do_POST(self):
            url = urlparse(self.path)
            setup = parse_qs(url.query).get("setup", [None])[0]
            offer = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or "{}")
            if url.path != "/offer" or offer.get("type") != "offer" or setup not in (None, "active", "passive"):
                return self.respond(400, 'POST /offer[?setup=active|passive] with {"type":"offer","sdp":...}')
            try:
                self.respond(200, {"type": "answer", "sdp": answerer.answer(offer["sdp"], setup, args.address)})
            except Exception as e:  # noqa: BLE001 - any failure is the client's answer
                self.respond(500, f"webrtcbin failed to answer: {e}")

        def log_message(self, fmt, *args):
            print(f"http: {fmt % args}", file=sys.stderr)

    host, port = args.listen.rsplit(":", 1)
    httpd = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"webrtcbin echo server on http://{args.listen}", file=sys.stderr, flush=True)
    # Until SIGTERM or Ctrl-C, which end the pipelines with the process.
    httpd.serve_forever()


# ---- client ---------------------------------------------------------------------


def mix(count, max_size, seed):
    """`count` messages of 1 byte to `max_size`: text (with multi-byte
    characters) or binary, the sizes around SCTP's chunk and the powers of
    two first, then log-uniform."""
    rng = random.Random(seed)
    edges = [s for s in (1, 2, 1199, 1200, 1201, 16383, 16384, 16385, 65535, 65536) if s <= max_size]
    sizes = edges[:count]
    while len(sizes) < count:
        sizes.append(max(1, round(math.exp(rng.random() * math.log(max_size)))))
    out = []
    for size in sizes:
        if rng.random() < 0.5:
            out.append(rng.randbytes(size))
            continue
        chars, length = [], 0
        while length + 4 < size:
            chars.append(rng.choice("abz0 é€😀"))
            length += len(chars[-1].encode())
        out.append("".join(chars) + "x" * (size - length))
    return out


def post_offer(url, sdp):
    """POSTs the offer to `url`; the answer's SDP."""
    body = json.dumps({"type": "offer", "sdp": sdp}).encode()
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"POST {url}: {e.code} {e.read().decode(errors='replace')}") from None
    if answer.get("type") != "answer":
        raise RuntimeError(f"expected an answer, got {answer!r}")
    return answer["sdp"]


def check(args):
    started = time.monotonic()
    peer = Peer("client")
    try:
        missing = [e for e in VIDEO_CODECS[args.video_codec][2] if not Gst.ElementFactory.find(e)]
        if missing:
            raise RuntimeError(f"no GStreamer element {', '.join(missing)} for --video-codec {args.video_codec}")
        for kind, pt in OFFERED_PT.items():
            peer.add_sender(kind, pt, args.video_codec)
        peer.start()
        channel = peer.webrtc.emit("create-data-channel", "echo", None)
        echoes = queue.Queue()
        info = peer.watch(channel, lambda _channel, _info, message: echoes.put(message))
        peer.set_description(True, "offer", peer.create("offer"))
        answer = post_offer(args.client, peer.complete_local_description(args.address))
        print(f"answer:\n{answer}", file=sys.stderr, flush=True)
        peer.set_description(False, "answer", answer)
        peer.wait(lambda: info["state"] != "connecting", "'echo' to open")
        if info["state"] != "open":
            raise RuntimeError(f"'echo' went {info['state']} instead of open")
        connect_ms = (time.monotonic() - started) * 1000

        # Every message out while at most WINDOW bytes wait for their echo.
        messages = mix(args.messages, args.max_size, args.seed)
        size = lambda m: len(m.encode() if isinstance(m, str) else m)  # noqa: E731
        sent = in_flight = 0
        for i, expected in enumerate(messages):
            while sent < len(messages) and (sent == i or in_flight + size(messages[sent]) <= WINDOW):
                send(channel, messages[sent])
                in_flight += size(messages[sent])
                sent += 1
            try:
                got = echoes.get(timeout=TIMEOUT)
            except queue.Empty:
                raise RuntimeError(f"no echo {i} of {len(messages)} on 'echo' in {TIMEOUT} s ({peer.errors})") from None
            if type(got) is not type(expected) or got != expected:
                kind = lambda m: "text" if isinstance(m, str) else "binary"  # noqa: E731
                raise RuntimeError(f"echo {i} is not the message sent: sent {kind(expected)} of {size(expected)} "
                                   f"bytes, got {kind(got)} of {size(got)}")
            in_flight -= size(expected)

        peer.wait(lambda: peer.received.get("video", {}).get("frames", 0) >= 30
                  and peer.received.get("audio", {}).get("frames", 0) >= 50,
                  "30 decoded video frames and 50 audio buffers from the server")
        report = peer.report()
        texts = sum(isinstance(m, str) for m in messages)
        return {
            "ok": True,
            "messages": len(messages),
            "text": texts,
            "binary": len(messages) - texts,
            "bytes": sum(map(size, messages)),
            "largest": max(map(size, messages)),
            **report,
            "connect_ms": round(connect_ms),
            "ms": round((time.monotonic() - started) * 1000),
        }
    finally:
        peer.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:8091", help="server mode: HOST:PORT of the HTTP server")
    parser.add_argument("--address", action="append", help="keep only webrtcbin's candidates on this address")
    parser.add_argument("--client", metavar="URL", help="client mode: offer to the echo server at URL")
    parser.add_argument("--messages", type=int, default=1000, help="client mode: how many messages")
    # No a=max-message-size in webrtcbin's SDP: its peers may send 64 KiB (RFC 8841 §6.1).
    parser.add_argument("--max-size", type=int, default=65536, help="client mode: the largest message")
    parser.add_argument("--seed", type=int, default=1, help="client mode: the seed of the message mix")
    parser.add_argument("--video-codec", choices=sorted(VIDEO_CODECS), default="vp8",
                        help="client mode: the one video codec webrtcbin offers and sends")
    args = parser.parse_args()
    Gst.init(None)
    fail_without_elements()
    if not args.client:
        return serve(args)
    try:
        summary = check(args)
    except Exception as e:  # noqa: BLE001 - the test reads the message
        sys.exit(f"gst_echo.py --client: {e}")
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
