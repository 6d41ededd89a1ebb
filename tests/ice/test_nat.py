"""Issue 3, acceptance 3: natter-ice through real NATs.

Network namespaces: a public one (P) runs `natter turn` on 198.18.0.1
(STUN and TURN); each site has a NAT box (N1, N2, N3) on the public side
and a private host (H1, H2, H3) behind it, all in 198.18.0.0/15 and
10.0.0.0/8. N1 and N3 are iptables MASQUERADE NATs (endpoint-independent
mapping) that drop unsolicited inbound packets, which keeps conntrack from
turning them symmetric during hole punching (shared TESTING.md); N2 maps
with `--random-fully` (a new port for every destination: symmetric).

- H1 and H3 (both endpoint-independent) must connect through their
  server-reflexive (or peer-reflexive) addresses, without the relay.
- H1 and H2 (one symmetric) cannot punch a hole and must use the relay.

Running this module runs test_nat_send.py (natter send through the same
kind of NATs) too.

Needs root (or sudo), iproute2 and iptables; CI runs as root.
"""

import os
import shutil
import subprocess
import unittest

from peers import TurnServer, candidate_type, in_netns, natter_peer, run_pair

SERVER = "198.18.0.1"
PREFIX = f"natter-ice-{os.getpid()}"


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ns_name(name):
    return f"{PREFIX}-{name}"


def ns(name, *cmd):
    sh("ip", "netns", "exec", ns_name(name), *cmd)


def require_namespaces():
    """Root, ip and iptables, or an AssertionError that says what is missing."""
    if os.geteuid() != 0:
        raise AssertionError("the NAT tests need root: run them as root (CI does) or through sudo")
    for tool in ("ip", "iptables"):
        if not shutil.which(tool):
            raise AssertionError(f"{tool} is missing: apt-get install iproute2 iptables (scripts/setup does)")


class NatTopology:
    """P, and one NAT box and one private host per site."""

    def __init__(self, sites):
        self.names = ["P"]
        sh("ip", "netns", "add", ns_name("P"))
        ns("P", "ip", "link", "set", "lo", "up")
        ns("P", "ip", "addr", "add", f"{SERVER}/32", "dev", "lo")
        ns("P", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, symmetric in sites.items():
            self.add_site(i, symmetric)

    def add_site(self, i, symmetric):
        nat, host = f"N{i}", f"H{i}"
        for n in (nat, host):
            sh("ip", "netns", "add", ns_name(n))
            self.names.append(n)
            ns(n, "ip", "link", "set", "lo", "up")
        # P <-> NAT box: 198.18.i.0/24.
        sh("ip", "link", "add", f"p{i}", "netns", ns_name("P"), "type", "veth", "peer", "name", "wan", "netns", ns_name(nat))
        ns("P", "ip", "addr", "add", f"198.18.{i}.1/24", "dev", f"p{i}")
        ns("P", "ip", "link", "set", f"p{i}", "up")
        ns(nat, "ip", "addr", "add", f"198.18.{i}.2/24", "dev", "wan")
        ns(nat, "ip", "link", "set", "wan", "up")
        ns(nat, "ip", "route", "add", "default", "via", f"198.18.{i}.1")
        # NAT box <-> host: 10.0.i.0/24.
        sh("ip", "link", "add", "lan", "netns", ns_name(nat), "type", "veth", "peer", "name", "eth0", "netns", ns_name(host))
        ns(nat, "ip", "addr", "add", f"10.0.{i}.1/24", "dev", "lan")
        ns(nat, "ip", "link", "set", "lan", "up")
        ns(host, "ip", "addr", "add", f"10.0.{i}.2/24", "dev", "eth0")
        ns(host, "ip", "link", "set", "eth0", "up")
        ns(host, "ip", "route", "add", "default", "via", f"10.0.{i}.1")
        ns(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        masquerade = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]
        ns(nat, *masquerade, *(["--random-fully"] if symmetric else []))
        for chain in ("INPUT", "FORWARD"):
            ns(nat, "iptables", "-A", chain, "-i", "wan", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP")

    def remove(self):
        for n in self.names:
            subprocess.run(["ip", "netns", "del", ns_name(n)], stderr=subprocess.DEVNULL)


def peer(site, role, turn):
    args = ["--host", f"10.0.{site}.2", "--stun", f"{SERVER}:3478", *turn.args()]
    if role == "controlling":
        args += ["--ping", "10"]
    return in_netns(ns_name(f"H{site}"), natter_peer(role, *args))


class RealNats(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_namespaces()
        cls.net = NatTopology({1: False, 2: True, 3: False})
        try:
            cls.turn = TurnServer("natter", host=SERVER, netns=ns_name("P"), allowed="198.18.0.0/15")
            # Wait until TURN answers inside P.
            ns("P", "bash", "-c", f"for i in $(seq 100); do (exec 3<>/dev/tcp/{SERVER}/3478) 2>/dev/null && exit 0; sleep 0.05; done; exit 1")
        except BaseException:
            cls.net.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.turn.stop()
        cls.net.remove()

    def pair_types(self, a, b):
        ra, rb = run_pair(peer(a, "controlling", self.turn), peer(b, "controlled", self.turn))
        types = [
            (candidate_type(r["connected"]["local"]), candidate_type(r["connected"]["remote"])) for r in (ra, rb)
        ]
        print(f"  H{a} selected {types[0]}, H{b} selected {types[1]}, {ra['seconds'] * 1000:.0f} ms")
        self.assertEqual(ra["pinged"]["echoed"], ra["pinged"]["pinged"], ra["pinged"])
        return types

    def test_endpoint_independent_nats_connect_without_relay(self):
        for local, remote in self.pair_types(1, 3):
            self.assertIn(local, ("srflx", "prflx"), (local, remote))
            self.assertIn(remote, ("srflx", "prflx"), (local, remote))

    def test_symmetric_nat_needs_the_relay(self):
        for local, remote in self.pair_types(1, 2):
            self.assertIn("relay", (local, remote))


def load_tests(loader, tests, pattern):
    """`unittest test_nat` (scripts/test-ice's root module) runs natter send's NAT tests too."""
    import test_nat_send

    tests.addTests(loader.loadTestsFromModule(test_nat_send))
    return tests


if __name__ == "__main__":
    unittest.main()
