# namespace: veth
"""GStreamer's webrtcbin (Debian's GStreamer 1.22, RSA certificate) and
`natter echo` (issue 17, acceptance 1): a data channel echo,
and VP8 and Opus both ways, with natter answering and offering, in both
DTLS roles. webrtcbin is tests/peer/gst_echo.py.

- webrtcbin offers (gst_echo.py client) to natter's echo server, which
  answers as DTLS client (its default) and as DTLS server
  (`--dtls-server`): 1,000 mixed text and binary messages of 1 byte to
  64 KiB echo byte-exact and in order (webrtcbin's SDP has no
  a=max-message-size, so its peers may send 64 KiB, RFC 8841 §6.1);
  natter receives webrtcbin's 320x240 VP8 and its Opus and reflects
  them, and webrtcbin decodes the reflection.
- natter offers (natter echo --client, with an IVF and an Ogg file made by
  ffmpeg as test_aiortc_media.py makes them) to webrtcbin's echo server,
  which answers active and passive (the answer's a=setup rewritten
  before webrtcbin applies it): natter's client checks 1,000 mixed
  messages on an ordered channel and 50 on an unordered one, and that
  video and audio come back (webrtcbin sends its own test sources);
  webrtcbin decodes natter's 320x240 video and its audio.

Each test checks the DTLS role both sides report, and that webrtcbin's
certificate is RSA: the certificate its DTLS elements hold is an RSA
key whose SHA-256 is the fingerprint of its SDP, which natter checks
the handshake's certificate against; natter's is ECDSA P-256 and
matches natter's SDP. (natter's stats have the peer fingerprint, but
`natter echo`'s /status does not show it.)

Python: this file runs in the venv target/py like the other peer tests
(scripts/test-peer), and gst_echo.py runs as a process of the system's
Python, /usr/bin/python3, its shebang, which has Debian's python3-gi.
The venv is not made with --system-site-packages: it is made from
whatever python3 is first on PATH (a pyenv Python on these machines),
whose site-packages are not Debian's dist-packages, and mixing Debian's
packages into aiortc's pinned venv could shadow its pins.

Network: the `veth` namespace, since libnice gathers nothing on `lo`.
libnice's candidate on 198.18.0.1 answered no connectivity check here,
so both peers use 198.18.0.2 (`--address`).

    scripts/test-peer tests/peer/test_gstreamer.py

Needs Debian's GStreamer packages (scripts/setup installs them), ffmpeg,
the venv target/py and the natter binary built
(`cargo build --release -p natter-server`).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests" / "peer"))
import example_process  # noqa: E402 (a module of this directory)
NATTER = Path(os.environ.get("NATTER_BIN", REPO / "target" / "release" / "natter"))
GST_ECHO = REPO / "tests" / "peer" / "gst_echo.py"
SYSTEM_PYTHON = "/usr/bin/python3"
ARTIFACTS = REPO / "target" / "peer" / "gstreamer"
ADDRESS = "198.18.0.2"
MESSAGES = 1000
MAX_SIZE = 65536
# A run (connection, messages, media) takes a few seconds; this is the bound.
RUN = 90
INSTALL = ('install it with scripts/setup (apt-get install gstreamer1.0-plugins-bad gstreamer1.0-plugins-good '
           'gstreamer1.0-plugins-base gstreamer1.0-nice gstreamer1.0-tools python3-gi gir1.2-gst-plugins-bad-1.0 '
           'gir1.2-gst-plugins-base-1.0)')


def require_gstreamer():
    check = 'import gi; gi.require_version("GstWebRTC", "1.0"); gi.require_version("GstSdp", "1.0")'
    if not Path(SYSTEM_PYTHON).exists():
        raise AssertionError(f"no {SYSTEM_PYTHON} (Debian's python3) to run gst_echo.py: {INSTALL}")
    done = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{SYSTEM_PYTHON} has no GStreamer WebRTC bindings ({done.stderr.strip()}): {INSTALL}")
    if not shutil.which("gst-inspect-1.0") or subprocess.run(["gst-inspect-1.0", "webrtcbin"], capture_output=True).returncode:
        raise AssertionError(f"GStreamer's webrtcbin is missing: {INSTALL}")


def ffmpeg():
    path = shutil.which("ffmpeg")
    if not path:
        raise AssertionError('ffmpeg is missing: install it with "apt-get install ffmpeg" (scripts/setup does)')
    return path


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def run(name, command):
    """Runs a client to its end, its stderr in target/peer/gstreamer; its
    JSON summary line, or a failure with the log's path."""
    log_path = ARTIFACTS / f"{name}.log"
    with open(log_path, "w") as log:
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, timeout=RUN)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{Path(command[0]).name} ran past {RUN} s: {log_path.read_text()[-2000:]}") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(f"{Path(command[0]).name} exited {done.returncode}: {log_path.read_text()[-2000:]}")
    return json.loads(lines[-1])


def fingerprint(certificate):
    der = certificate.public_bytes(serialization.Encoding.DER)
    return "sha-256 " + ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class Server:
    """gst_echo.py or natter's echo as a server on a free port, its log in
    target/peer/gstreamer."""

    def __init__(self, binary, name, args, command=()):
        self.log_path = ARTIFACTS / f"{name}.log"
        self.process, self.log, self.url = example_process.start(binary, self.log_path, args, command=command)

    def status(self):
        return get_json(f"{self.url}/status")

    def stop(self):
        self.process.terminate()  # a no-op once it exited
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class GStreamerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_gstreamer()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.video, cls.audio = ARTIFACTS / "send.ivf", ARTIFACTS / "send.ogg"
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "3",
                        "-c:v", "libvpx", "-g", "30", "-b:v", "500k", str(cls.video)], check=True)
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                        "-t", "3", "-c:a", "libopus", "-b:a", "32k", str(cls.audio)], check=True)

    def assert_certificates(self, dtls):
        """webrtcbin's certificate is RSA and is the one its SDP names;
        natter's is ECDSA P-256 and is the one natter's SDP names."""
        own = x509.load_pem_x509_certificate(dtls["certificate"].encode())
        self.assertIsInstance(own.public_key(), rsa.RSAPublicKey, "webrtcbin's DTLS certificate is RSA")
        self.assertGreaterEqual(own.public_key().key_size, 2048)
        self.assertEqual(dtls["fingerprint"].upper(), fingerprint(own).upper(),
                         "webrtcbin's SDP names the RSA certificate its DTLS presents")
        natter = x509.load_pem_x509_certificate(dtls["remote_certificate"].encode())
        self.assertIsInstance(natter.public_key(), ec.EllipticCurvePublicKey, "natter's certificate is ECDSA")
        self.assertEqual(natter.public_key().curve.name, "secp256r1")
        self.assertEqual(dtls["remote_fingerprint"].upper(), fingerprint(natter).upper(),
                         "the certificate webrtcbin received is the one natter's SDP names")

    def assert_webrtcbin(self, seen, dtls_role):
        """What webrtcbin reports: its DTLS role, a completed handshake
        with an RSA certificate, and natter's video (320x240) and audio
        decoded."""
        self.assertEqual(seen["errors"], [])
        self.assertEqual(seen["dtls"]["role"], dtls_role)
        self.assertIn("connected", seen["dtls"]["states"])
        self.assert_certificates(seen["dtls"])
        video, audio = seen["received"]["video"], seen["received"]["audio"]
        self.assertGreater(video["frames"], 0)
        self.assertEqual((video["width"], video["height"]), (320, 240))
        self.assertGreater(audio["frames"], 0)
        self.assertEqual(audio["rate"], 48000)

    def webrtcbin_offers(self, name, natter_args, natter_role, webrtcbin_role):
        natter = Server(NATTER, f"{name}.natter", ["--address", ADDRESS, *natter_args], command=("echo",))
        try:
            summary = run(f"{name}.webrtcbin", [str(GST_ECHO), "--client", f"{natter.url}/offer", "--address", ADDRESS,
                                                "--messages", str(MESSAGES), "--max-size", str(MAX_SIZE)])
            [status] = natter.status()
        finally:
            natter.stop()
        dtls = summary["dtls"]
        print(f"webrtcbin: {json.dumps({**summary, 'dtls': {**dtls, 'certificate': '…', 'remote_certificate': '…'}})}",
              file=sys.stderr)
        print(f"natter: {json.dumps({k: v for k, v in status.items() if k != 'counters'})}", file=sys.stderr)

        self.assertEqual(summary["messages"], MESSAGES)
        self.assertEqual(summary["largest"], MAX_SIZE)
        self.assertGreater(summary["text"], 0)
        self.assertGreater(summary["binary"], 0)
        self.assertEqual(status["errors"], [])
        [channel] = status["channels"].values()
        self.assertEqual((channel["label"], channel["messages_echoed"], channel["bytes_echoed"]),
                         ("echo", MESSAGES, summary["bytes"]))
        self.assertEqual(status["dtls"]["role"], natter_role)
        self.assertIsNotNone(status["dtls"]["srtp_profile"], "natter completed the handshake")
        self.assertIsNone(status["dtls"]["error"])
        formats = {s["transceiver"]: s["format"] for s in status["media"]["senders"]}
        received = {formats[r["transceiver"]]: r for r in status["media"]["receivers"]}
        self.assertEqual(set(received), {"Vp8", "Opus"})
        self.assertGreater(received["Vp8"]["frames_received"], 0)
        self.assertEqual(received["Vp8"]["frame_size"], [320, 240])
        self.assertGreater(received["Opus"]["frames_received"], 0)
        self.assert_webrtcbin(summary, webrtcbin_role)

    def natter_offers(self, name, setup, natter_role, webrtcbin_role):
        webrtcbin = Server(GST_ECHO, f"{name}.webrtcbin", ["--address", ADDRESS])
        try:
            summary = run(f"{name}.natter", [str(NATTER), "echo", "--client", f"{webrtcbin.url}/offer?setup={setup}",
                                             "--address", ADDRESS, "--messages", str(MESSAGES),
                                             "--max-size", str(MAX_SIZE), "--video", str(self.video),
                                             "--audio", str(self.audio)])
            [status] = webrtcbin.status()
        finally:
            webrtcbin.stop()
        dtls = status["dtls"]
        print(f"natter: {json.dumps(summary)}", file=sys.stderr)
        print(f"webrtcbin: {json.dumps({**status, 'dtls': {**dtls, 'certificate': '…', 'remote_certificate': '…'}})}",
              file=sys.stderr)

        self.assertTrue(summary["ok"])
        self.assertEqual(summary["reliable"]["messages"], MESSAGES)
        self.assertEqual(summary["reliable"]["largest"], MAX_SIZE)
        self.assertEqual(summary["unordered"]["messages"], 50)
        self.assertEqual(summary["dtls_role"], natter_role)
        # natter's client checked that at least half of its frames came back, with a 320x240 keyframe.
        self.assertEqual(summary["media"]["size"], [320, 240])
        channels = {c["label"]: c for c in status["channels"].values()}
        # The ordered channel also carried `close-me`.
        self.assertEqual(channels["echo"]["messages"], MESSAGES + 1)
        self.assertEqual(channels["echo"]["closed_by"], "webrtcbin")
        self.assertEqual((channels["lossy"]["messages"], channels["lossy"]["ordered"]), (50, False))
        self.assertEqual(channels["lossy"]["closed_by"], "peer", "natter closed 'lossy'")
        self.assert_webrtcbin(status, webrtcbin_role)

    def test_webrtcbin_offers_natter_answers_as_dtls_client(self):
        self.webrtcbin_offers("offer-natter-client", [], "Client", "server")

    def test_webrtcbin_offers_natter_answers_as_dtls_server(self):
        self.webrtcbin_offers("offer-natter-server", ["--dtls-server"], "Server", "client")

    def test_natter_offers_webrtcbin_answers_active(self):
        self.natter_offers("answer-active", "active", "server", "client")

    def test_natter_offers_webrtcbin_answers_passive(self):
        self.natter_offers("answer-passive", "passive", "client", "server")


if __name__ == "__main__":
    unittest.main()
