"""Issue 3, acceptance 2: natter-ice against an independent ICE
implementation, aioice (the ICE of aiortc), in both roles: directly on
loopback, and relay-only through natter's TURN server and through coturn.

Each test starts natter's ice_peer example and tests/ice/aioice_peer.py,
lets them trade candidates, and checks that both select a pair of the
expected type and that 20 datagrams natter sends come back through
aioice's echo.

Relayed tests also reach the TURN server over TCP and over TLS (RFC 8656
§3.1) from natter's side (`--turn-transport tcp|tls`), and once each
from both sides; natter then reports its relay's protocol and the frames
it read from the connection. Over TLS the servers have a self-signed
certificate for turn.natter.test and 127.0.0.1 that both peers are told
to trust, and natter checks the name (or the address) in it: a wrong
name gets no relay.
"""

import time
import unittest

from peers import TLS_NAME, Peer, TurnServer, aioice_peer, candidate_type, natter_peer, run_pair

PINGS = "20"


class AioiceInterop(unittest.TestCase):
    def check(self, natter_role, natter_args=(), aioice_args=(), expect="host"):
        aioice_role = "controlled" if natter_role == "controlling" else "controlling"
        ra, rb = run_pair(
            natter_peer(natter_role, "--host", "127.0.0.1", "--ping", PINGS, *natter_args),
            aioice_peer(aioice_role, "--host", "127.0.0.1", *aioice_args),
        )
        natter_pair = (candidate_type(ra["connected"]["local"]), candidate_type(ra["connected"]["remote"]))
        aioice_pair = (candidate_type(rb["connected"]["local"]), candidate_type(rb["connected"]["remote"]))
        relay = f", natter's relay over {ra['connected']['relay_protocol']}" if expect == "relay" else ""
        print(f"  natter {natter_role}: {natter_pair}, aioice: {aioice_pair}{relay}, {ra['seconds'] * 1000:.0f} ms")
        self.assertEqual(natter_pair[0], expect, ra["connected"])
        self.assertEqual(aioice_pair[0], expect, rb["connected"])
        self.assertEqual(ra["pinged"], {"pinged": int(PINGS), "echoed": int(PINGS)})
        self.assertGreaterEqual(rb["final"]["echoed"], int(PINGS))
        return ra

    def test_host_natter_controlling(self):
        self.check("controlling")

    def test_host_natter_controlled(self):
        self.check("controlled")

    def relayed(self, kind, natter_role, natter_transport="udp", aioice_transport="udp", natter_args=()):
        turn = TurnServer(kind, tls="tls" in (natter_transport, aioice_transport))
        try:
            natter_args = [*turn.args(natter_transport), "--relay-only", *natter_args]
            aioice_args = [*turn.args(aioice_transport), "--relay-only"]
            connected = self.check(natter_role, natter_args, aioice_args, expect="relay")["connected"]
            self.assertEqual(connected["relay_protocol"], natter_transport, connected)
            for stream in ("tcp", "tls"):
                frames = connected[f"turn_{stream}_frames"]
                if stream == natter_transport:
                    # The Allocate's answers at least came over the connection.
                    self.assertGreaterEqual(frames, 2, connected)
                else:
                    self.assertEqual(frames, 0, connected)
        finally:
            turn.stop()

    def test_relay_through_natter_turn_natter_controlling(self):
        self.relayed("natter", "controlling")

    def test_relay_through_natter_turn_natter_controlled(self):
        self.relayed("natter", "controlled")

    def test_relay_through_coturn_natter_controlling(self):
        self.relayed("coturn", "controlling")

    def test_relay_through_coturn_natter_controlled(self):
        self.relayed("coturn", "controlled")

    def test_relay_over_tcp_through_natter_turn_natter_controlling(self):
        self.relayed("natter", "controlling", natter_transport="tcp")

    def test_relay_over_tcp_through_natter_turn_natter_controlled(self):
        self.relayed("natter", "controlled", natter_transport="tcp")

    def test_relay_over_tcp_through_coturn_natter_controlling(self):
        self.relayed("coturn", "controlling", natter_transport="tcp")

    def test_relay_over_tcp_through_coturn_natter_controlled(self):
        self.relayed("coturn", "controlled", natter_transport="tcp")

    def test_relay_both_over_tcp_through_natter_turn(self):
        self.relayed("natter", "controlling", natter_transport="tcp", aioice_transport="tcp")

    def test_relay_both_over_tcp_through_coturn(self):
        self.relayed("coturn", "controlled", natter_transport="tcp", aioice_transport="tcp")

    def test_relay_over_tls_through_natter_turn_natter_controlling(self):
        self.relayed("natter", "controlling", natter_transport="tls")

    def test_relay_over_tls_through_natter_turn_natter_controlled(self):
        self.relayed("natter", "controlled", natter_transport="tls")

    def test_relay_over_tls_through_coturn_natter_controlling(self):
        self.relayed("coturn", "controlling", natter_transport="tls")

    def test_relay_over_tls_through_coturn_natter_controlled(self):
        self.relayed("coturn", "controlled", natter_transport="tls")

    def test_relay_both_over_tls_through_natter_turn(self):
        name = ["--turn-server-name", TLS_NAME]
        self.relayed("natter", "controlled", natter_transport="tls", aioice_transport="tls", natter_args=name)

    def test_relay_both_over_tls_through_coturn(self):
        name = ["--turn-server-name", TLS_NAME]
        self.relayed("coturn", "controlling", natter_transport="tls", aioice_transport="tls", natter_args=name)


class TurnOverTlsVerification(unittest.TestCase):
    def test_certificate_for_another_name_gets_no_relay(self):
        turn = TurnServer("natter", tls=True)
        try:
            args = [*turn.args("tls"), "--turn-server-name", "other.natter.test", "--relay-only"]
            peer = Peer("natter", natter_peer("controlling", *args))
            try:
                offer = peer.read(time.monotonic() + 15)
            finally:
                stderr = peer.stderr()
                peer.stop()
            self.assertEqual(offer["candidates"], [], offer)
            self.assertIn('certificate not valid for name "other.natter.test"', stderr)
        finally:
            turn.stop()


if __name__ == "__main__":
    unittest.main()
