"""DTLS handshakes as they cross the wire, for bench/connect (issue 17):
dumpcap records the UDP on a namespace's `lo` while a pair of peers
connects, and handshakes() reads each connection's handshake back from
the capture, whichever implementations made it.

All the bench's peers run in one namespace and talk between its own
addresses, which Linux routes over `lo` (even those of a veth), so one
capture on `lo` sees every datagram once.

A datagram belongs to the handshake when it is a DTLS record (RFC 7983:
first byte 20-63) that is a handshake or ChangeCipherSpec record in
plaintext (content types 22, 20: every DTLS 1.2 flight, DTLS 1.3's
ClientHello and ServerHello) or a DTLS 1.3 record with the unified
header (RFC 9147 §4: 001CSLEE) in epoch 2, the handshake keys. A flight
is a run of such datagrams in one direction; the round trips are half
the flights (DTLS 1.2: 4 flights, 2 round trips, 6 with a cookie
exchange; DTLS 1.3: 3 flights, 1.5). The time runs from the first
ClientHello to the last handshake datagram, as the capture stamped them.
A retransmitted flight after the peer's answer would count as one more
flight; on loopback none are expected.
"""

import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

DUMPCAP = "/usr/bin/dumpcap"
ETHERNET_IPV4, ETHERNET_IPV6 = 0x0800, 0x86DD


def available():
    return Path(DUMPCAP).exists()


class Capture:
    """dumpcap on `lo` inside the namespace (as root) while the block runs;
    `path` is the pcap file afterwards."""

    def __init__(self, ns):
        self.ns = ns
        self.dir = tempfile.TemporaryDirectory(prefix="natter-connect-")
        self.path = Path(self.dir.name) / "udp.pcap"
        self.process = None

    def __enter__(self):
        # dumpcap writes as root: the directory must let it.
        Path(self.dir.name).chmod(0o777)
        cmd = [DUMPCAP, "-q", "-i", "lo", "-P", "-f", "udp", "-w", str(self.path)]
        self.process = subprocess.Popen(self.ns.wrap(cmd, as_root=True), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        # The pcap header is written once the capture runs.
        while not (self.path.exists() and self.path.stat().st_size >= 24):
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"dumpcap did not start: {self.process.stderr.read().decode(errors='replace')[-500:]}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        # Lets the last datagrams reach the file before it stops.
        time.sleep(0.2)
        self.process.terminate()
        try:
            # Drains its stderr too.
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            sys.exit(f"dumpcap (pid {self.process.pid}) did not stop on SIGTERM")

    def close(self):
        self.dir.cleanup()


def datagrams(path):
    """(seconds, source, destination, payload) of each UDP datagram of a
    pcap of Ethernet frames (Linux's `lo`)."""
    data = Path(path).read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise ValueError(f"{path}: not a little-endian pcap file (magic {magic:#x})")
    fraction = 1e-9 if magic == 0xA1B23C4D else 1e-6
    if struct.unpack("<I", data[20:24])[0] != 1:
        raise ValueError(f"{path}: not Ethernet frames")
    offset = 24
    while offset + 16 <= len(data):
        seconds, sub, length, _ = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        ethertype = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
        if ethertype == ETHERNET_IPV4 and ip[9] == 17:
            header = (ip[0] & 0x0F) * 4
            source, destination = ip[12:16], ip[16:20]
        elif ethertype == ETHERNET_IPV6 and ip[6] == 17:
            header = 40
            source, destination = ip[8:24], ip[24:40]
        else:
            continue
        udp = ip[header:]
        source_port, destination_port = struct.unpack("!HH", udp[:4])
        yield seconds + sub * fraction, (source, source_port), (destination, destination_port), udp[8:]


def is_handshake(payload):
    if not payload:
        return False
    first = payload[0]
    return first in (20, 22) or (0x20 <= first <= 0x3F and first & 0x03 == 2)


def handshakes(path):
    """Each connection's handshake, in the order they started: a dict of
    version ("1.2" or "1.3"), flights and ms."""
    connections = {}
    for at, source, destination, payload in datagrams(path):
        if not is_handshake(payload):
            continue
        key = frozenset((source, destination))
        connections.setdefault(key, []).append((at, source, payload[0]))
    found = []
    for records in connections.values():
        flights = 1 + sum(a[1] != b[1] for a, b in zip(records, records[1:]))
        version = "1.3" if any(first >= 0x20 for _, _, first in records) else "1.2"
        found.append({"start": records[0][0], "version": version, "flights": flights, "ms": (records[-1][0] - records[0][0]) * 1000})
    return sorted(found, key=lambda h: h["start"])


def summary(found):
    """One line about handshakes: versions, flights, round trips, median ms."""
    if not found:
        return "no DTLS handshake seen"
    versions = Counter(h["version"] for h in found)
    flights = Counter(h["flights"] for h in found)
    median_flights = statistics.median(h["flights"] for h in found)
    spread = ", ".join(f"{n} x{count}" for n, count in sorted(flights.items()))
    return (
        f"DTLS {'/'.join(sorted(versions))}, {median_flights:g} flights ({median_flights / 2:g} round trips; {spread}),"
        f" {statistics.median(h['ms'] for h in found):.2f} ms ClientHello to last handshake record"
        f" (min {min(h['ms'] for h in found):.2f}, max {max(h['ms'] for h in found):.2f}, n={len(found)})"
    )
