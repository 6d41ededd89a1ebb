"""Helpers of the ICE interop and network tests (issue 3): start ICE peers
that speak the JSON-lines protocol of tests/ice/aioice_peer.py (natter's
is crates/natter-ice/examples/ice_peer.rs), let them exchange
credentials and candidates, and collect what they report; start TURN
servers (natter turn, coturn's turnserver) on free ports, over UDP, TCP
and, with a self-signed certificate made here, TLS.
"""

import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PYTHON = REPO / "target" / "py" / "bin" / "python"
ICE_PEER = REPO / "target" / "release" / "examples" / "ice_peer"
NATTER = REPO / "target" / "release" / "natter"
TIMEOUT = 40
# The name in the TURN servers' certificate (tls_certificate()).
TLS_NAME = "turn.natter.test"
# (directory, certificate, key) once tls_certificate() made them; the
# directory goes at exit.
_tls = None


def require(path, how):
    if not Path(path).exists():
        raise AssertionError(f"{path} is missing: {how}")


def natter_peer(role, *args):
    require(ICE_PEER, "build it with `cargo build --release -p natter-ice --example ice_peer` (scripts/test-ice does)")
    return [str(ICE_PEER), "--role", role, *args]


def aioice_peer(role, *args):
    require(PYTHON, "run scripts/setup: it installs aioice into target/py")
    return [str(PYTHON), str(REPO / "tests" / "ice" / "aioice_peer.py"), "--role", role, *args]


def in_netns(ns, cmd):
    return ["ip", "netns", "exec", ns, *cmd]


class Peer:
    """One peer process and the JSON lines it prints."""

    def __init__(self, name, cmd):
        self.name = name
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.buffer = ""

    def read(self, deadline):
        """The next JSON line, waiting until `deadline` (time.monotonic())."""
        while "\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError(f"{self.name}: no report in time; stderr:\n{self.stderr()}")
            chunk = os.read(self.proc.stdout.fileno(), 65536).decode()
            if not chunk:
                raise AssertionError(f"{self.name} exited ({self.proc.wait()}); stderr:\n{self.stderr()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split("\n", 1)
        return json.loads(line)

    def write(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def close(self, deadline):
        """Closes stdin and returns the final report."""
        self.proc.stdin.close()
        try:
            return self.read(deadline)
        finally:
            self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if not pipe.closed:
                pipe.close()

    def stderr(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.stderr.read()[-4000:]


def candidate_type(sdp):
    m = re.search(r" typ (\w+)", sdp or "")
    return m.group(1) if m else None


def run_pair(a_cmd, b_cmd, timeout=TIMEOUT):
    """Runs two peers until both report connected and `a`'s pings are done;
    returns (a's reports, b's reports) as dicts: "offer", "connected",
    "final"."""
    deadline = time.monotonic() + timeout
    a, b = Peer("a", a_cmd), Peer("b", b_cmd)
    try:
        start = time.monotonic()
        ra = {"offer": a.read(deadline)}
        rb = {"offer": b.read(deadline)}
        a.write(rb["offer"])
        b.write(ra["offer"])
        ra["connected"] = a.read(deadline)
        rb["connected"] = b.read(deadline)
        ra["seconds"] = time.monotonic() - start
        for name, r, p in (("a", ra, a), ("b", rb, b)):
            if not r["connected"].get("connected"):
                raise AssertionError(f"{name} did not connect: {r['connected']}; stderr:\n{p.stderr()}")
        if "--ping" in a_cmd:
            ra["pinged"] = a.read(deadline)
        ra["final"] = a.close(deadline)
        rb["final"] = b.close(deadline)
        return ra, rb
    finally:
        a.stop()
        b.stop()


def free_port(kind=socket.SOCK_DGRAM, host="127.0.0.1"):
    """A port free for both UDP and TCP on `host`."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind((host, port))
            return port
        except OSError:
            continue


def wait_for_port(host, port, proc, what, timeout=10):
    """Waits until a TCP listener answers on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} is not listening on {host}:{port}")


def tls_certificate():
    """(certificate, key): PEM files of a self-signed ECDSA P-256
    certificate for TLS_NAME and 127.0.0.1, made with the openssl CLI once
    per test run. It is not a CA (webpki refuses a CA certificate as the
    server's own), so clients trust it directly."""
    global _tls
    if _tls is not None:
        return _tls[1], _tls[2]
    if not shutil.which("openssl"):
        raise AssertionError("openssl is missing: apt-get install openssl")
    tmp = tempfile.TemporaryDirectory(prefix="ice-tls-")
    conf, cert, key = (Path(tmp.name) / f for f in ("openssl.cnf", "cert.pem", "key.pem"))
    conf.write_text(
        "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ext\n"
        f"[dn]\nCN = {TLS_NAME}\n"
        f"[ext]\nsubjectAltName = DNS:{TLS_NAME}, IP:127.0.0.1\n"
        "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
    )
    subprocess.run(
        ["openssl", "req", "-x509", "-config", str(conf), "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    _tls = (tmp, cert, key)
    return cert, key


class TurnServer:
    """natter turn or coturn's turnserver on 127.0.0.1 (or `host`) with
    user `ice:secret`, relaying to loopback peers (allowed explicitly);
    with `tls`, also on a TLS port with the certificate of
    tls_certificate()."""

    USER, PASSWORD = "ice", "secret"

    def __init__(self, kind, host="127.0.0.1", netns=None, allowed="127.0.0.1", tls=False):
        self.host, self.port = host, free_port(host=host) if netns is None else 3478
        self.tls_port = None
        if tls:
            self.tls_port = free_port(socket.SOCK_STREAM, host=host) if netns is None else 5349
            cert, key = tls_certificate()
            tls_args = ["--cert", str(cert), "--pkey", str(key), "--tls-listening-port", str(self.tls_port)]
        self.tmp = tempfile.TemporaryDirectory(prefix=f"ice-{kind}-")
        if kind == "natter":
            require(NATTER, "build it with `cargo build --release -p natter-server` (scripts/test-ice does)")
            cmd = [
                str(NATTER), "turn",
                "--listening-ip", host, "--listening-port", str(self.port),
                "--user", f"{self.USER}:{self.PASSWORD}",
                "--allowed-peer-ip", allowed,
                "--min-port", "40000", "--max-port", "44999",
                *(tls_args if tls else []),
            ]
        elif kind == "coturn":
            if not shutil.which("turnserver"):
                raise AssertionError("turnserver is missing: apt-get install coturn (scripts/setup does)")
            cmd = [
                "turnserver", "-n", "--no-cli", "--no-dtls",
                *(tls_args if tls else ["--no-tls"]),
                "--listening-ip", host, "--relay-ip", host, "--listening-port", str(self.port),
                "--lt-cred-mech", "--user", f"{self.USER}:{self.PASSWORD}", "--realm", "natter.test",
                "--allow-loopback-peers", "--min-port", "45000", "--max-port", "49999",
                "--pidfile", f"{self.tmp.name}/pid", "--log-file", f"{self.tmp.name}/log", "--no-stdout-log",
            ]
        else:
            raise ValueError(kind)
        if netns:
            cmd = in_netns(netns, cmd)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if netns is None:
            wait_for_port(host, self.port, self.proc, f"{kind} turn")
            if tls:
                wait_for_port(host, self.tls_port, self.proc, f"{kind} turn (TLS)")
        self.kind = kind

    def args(self, transport=None):
        """The TURN options of both peers' scripts; for `transport` "tls"
        the TLS port and the certificate to trust."""
        port = self.tls_port if transport == "tls" else self.port
        if transport == "tls" and port is None:
            raise AssertionError("this TURN server was started without tls=True")
        args = ["--turn", f"{self.host}:{port}", "--turn-user", self.USER, "--turn-password", self.PASSWORD]
        if transport:
            args += ["--turn-transport", transport]
        if transport == "tls":
            args += ["--turn-ca", str(tls_certificate()[0])]
        return args

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.tmp.cleanup()
