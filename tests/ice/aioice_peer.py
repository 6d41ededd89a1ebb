#!/usr/bin/env python3
"""An aioice peer for natter-ice's interop tests (issue 3, acceptance 2).

aioice is an independent ICE implementation (RFC 8445), the one aiortc
uses. This script runs one aioice `Connection` and talks to the test that
started it through JSON lines:

  stdout  {"ufrag", "pwd", "candidates": [sdp, ...]}   after gathering
  stdin   {"ufrag", "pwd", "candidates": [sdp, ...]}   the other side's,
          then end-of-candidates
  stdout  {"connected": true, "local": sdp, "remote": sdp}  or
          {"connected": false, "error": text}
  then every datagram received on the connection is sent back (an echo)
  until stdin closes; it prints {"echoed": n} before exiting.

Options: --role controlling|controlled, --host ADDRESS (the only host
address gathered; aioice never gathers 127.0.0.1 by itself), --turn
HOST:PORT with --turn-user/--turn-password/--turn-transport udp|tcp|tls
(tls with --turn-ca PEM: the certificate to trust, checked against the
host of --turn), and --relay-only (aioice's transport policy).
"""

import argparse
import asyncio
import json
import ssl
import sys

import aioice
import aioice.ice


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["controlling", "controlled"], required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--turn")
    p.add_argument("--turn-user")
    p.add_argument("--turn-password")
    p.add_argument("--turn-transport", default="udp", choices=["udp", "tcp", "tls"])
    p.add_argument("--turn-ca")
    p.add_argument("--relay-only", action="store_true")
    return p.parse_args()


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    args = parse_args()
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.host]
    turn = None
    if args.turn:
        host, port = args.turn.rsplit(":", 1)
        turn = (host, int(port))
    # aioice hands `turn_ssl` to asyncio's create_connection, so it may be
    # a context that trusts the test's certificate.
    turn_ssl = ssl.create_default_context(cafile=args.turn_ca) if args.turn_transport == "tls" else False
    conn = aioice.Connection(
        ice_controlling=args.role == "controlling",
        turn_server=turn,
        turn_username=args.turn_user,
        turn_password=args.turn_password,
        turn_ssl=turn_ssl,
        turn_transport="tcp" if args.turn_transport == "tls" else args.turn_transport,
        use_ipv6=False,
        transport_policy=aioice.TransportPolicy.RELAY if args.relay_only else aioice.TransportPolicy.ALL,
    )
    await conn.gather_candidates()
    emit({
        "ufrag": conn.local_username,
        "pwd": conn.local_password,
        "candidates": [c.to_sdp() for c in conn.local_candidates],
    })

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    remote = json.loads(await reader.readline())
    conn.remote_username = remote["ufrag"]
    conn.remote_password = remote["pwd"]
    for sdp in remote["candidates"]:
        await conn.add_remote_candidate(aioice.Candidate.from_sdp(sdp.removeprefix("candidate:")))
    await conn.add_remote_candidate(None)

    try:
        await asyncio.wait_for(conn.connect(), 30)
    except Exception as e:  # noqa: BLE001 - reported to the test
        emit({"connected": False, "error": f"{type(e).__name__}: {e}"})
        return
    pair = conn._nominated.get(1)
    emit({
        "connected": True,
        "local": pair.local_candidate.to_sdp() if pair else None,
        "remote": pair.remote_candidate.to_sdp() if pair else None,
    })

    echoed = 0

    async def echo():
        nonlocal echoed
        while True:
            data = await conn.recv()
            await conn.send(data)
            echoed += 1

    echo_task = asyncio.create_task(echo())
    await reader.read()  # until stdin closes
    echo_task.cancel()
    emit({"echoed": echoed})
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
