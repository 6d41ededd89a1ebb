"""natter-impair (crates/natter-impair), the userspace delay proxy every
bench puts on a delayed path, as a process in front of one ICE candidate
of an SDP: aiortc_pair.py's --rtt (bench/datachannel, issue 15). The
Node twin is impair_proxy.mjs.
"""

import asyncio
import re

CANDIDATE = re.compile(r"^a=(candidate:\S+ \d+ udp \d+ (\d+\.\d+\.\d+\.\d+) (\d+) .*)$", re.IGNORECASE | re.MULTILINE)


class Proxies:
    """The natter-impair processes started, stopped together on exit."""

    def __init__(self, binary, one_way_ms):
        self.binary, self.one_way_ms = binary, one_way_ms
        self.processes = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
            await process.wait()

    async def front(self, sdp):
        """`sdp` (one media section) with its first UDP IPv4 candidate
        behind a new proxy, the only candidate left in it."""
        m = CANDIDATE.search(sdp)
        if not m:
            raise RuntimeError(f"no UDP IPv4 candidate to put a proxy in front of in:\n{sdp}")
        argv = ["--listen", "127.0.0.1:0", "--upstream", f"{m.group(2)}:{m.group(3)}", "--delay", f"{round(self.one_way_ms * 1000)}us"]
        process = await asyncio.create_subprocess_exec(self.binary, *argv, stdout=asyncio.subprocess.PIPE)
        self.processes.append(process)
        line = (await process.stdout.readline()).decode().strip()
        listening = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not listening:
            raise RuntimeError(f"{self.binary} printed {line!r}, expected 'listening on 127.0.0.1:PORT'")
        fields = m.group(1).split(" ")
        fields[4], fields[5] = "127.0.0.1", listening.group(1)
        lines = [x for x in sdp.split("\r\n") if not x.startswith("a=candidate:")]
        lines.insert(len(lines) - 1, "a=" + " ".join(fields))  # before the "" after the final CRLF
        return "\r\n".join(lines)
