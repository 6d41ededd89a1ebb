"""What bench/datachannel and bench/connect share: checks that the peers
are installed, a network namespace that has only `lo` (shared
TESTING.md: in the default namespace Chromium also gathers eth0 and may
pair it with 127.0.0.1), the peer halves run inside it, and the natter
hook.

Every peer half is a program that prints one figure per line on stdout
(chromium_pair.mjs, aiortc_pair.py, natter's examples); figures() runs
one and reads them.
"""

import os
import pwd
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
LIB = REPO / "bench" / "lib"
PYTHON = REPO / "target" / "py" / "bin" / "python"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def require_chromium():
    """Exits with how to install them when node, Chromium or playwright-core is missing."""
    missing = []
    if not shutil.which("node"):
        missing.append("node")
    if not Path(CHROMIUM).exists():
        missing.append(f"Chromium at {CHROMIUM}")
    if not (REPO / "tests" / "browser" / "node_modules" / "playwright-core").is_dir():
        missing.append("playwright-core in tests/browser/node_modules")
    if missing:
        sys.exit(f"missing: {', '.join(missing)}. Run scripts/setup, which installs them")


def require_aiortc():
    """Exits with how to install it when the venv or aiortc in it is missing."""
    if not PYTHON.exists():
        sys.exit("the venv target/py is missing: run scripts/setup")
    if subprocess.run([str(PYTHON), "-c", "import aiortc"], check=False, capture_output=True).returncode != 0:
        sys.exit(
            "aiortc is missing from target/py: run scripts/setup on a fresh machine, or"
            " `target/py/bin/pip install -r tests/requirements.txt` in an existing venv"
        )


# scripts/lib/namespace.sh's `veth` kind: a veth pair with both ends
# inside, and a default route, for peers that gather nothing on `lo` or
# without a default route (Firefox, libnice; shared TESTING.md). Traffic
# between the two addresses stays in the namespace.
VETH_ADDRESSES = ("198.18.0.1", "198.18.0.2")
VETH = [
    ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
    ["addr", "add", f"{VETH_ADDRESSES[0]}/24", "dev", "v0"],
    ["addr", "add", f"{VETH_ADDRESSES[1]}/24", "dev", "v1"],
    ["link", "set", "v0", "up"],
    ["link", "set", "v1", "up"],
    ["route", "add", "default", "via", VETH_ADDRESSES[1], "dev", "v0"],
]


class Namespace:
    """`ip netns` with only `lo` up (with veth=True, also the veth pair of
    VETH), deleted on exit; `wrap(cmd)` runs cmd inside.

    Needs root, or sudo as scripts/test-browser uses it. With
    enabled=False, commands run in the current namespace unchanged.
    """

    def __init__(self, enabled=True, veth=False):
        self.enabled = enabled
        self.veth = veth
        self.name = f"natter-bench-{os.getpid()}{'-veth' if veth else ''}"
        self.sudo = [] if os.geteuid() == 0 else ["sudo"]

    def __enter__(self):
        if not self.enabled:
            return self
        # SIGTERM unwinds like Ctrl-C does, so the namespace goes with us.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        setup = [["ip", "netns", "add", self.name], ["ip", "-n", self.name, "link", "set", "lo", "up"]]
        setup += [["ip", "-n", self.name, *step] for step in (VETH if self.veth else [])]
        for cmd in setup:
            r = subprocess.run([*self.sudo, *cmd], check=False, capture_output=True, text=True)
            if r.returncode != 0:
                self.__exit__()
                sys.exit(
                    f"`{' '.join(cmd)}` failed: {r.stderr.strip()}\n"
                    "the bench runs its peers in a network namespace, which needs root (or sudo);"
                    " --no-netns runs them here, where Chromium may also use eth0"
                )
        return self

    def __exit__(self, *exc):
        if self.enabled:
            subprocess.run([*self.sudo, "ip", "netns", "del", self.name], check=False, capture_output=True)

    def wrap(self, cmd, as_root=False):
        if not self.enabled:
            return [*self.sudo, *cmd] if as_root else list(cmd)
        as_user = ["sudo", "-u", pwd.getpwuid(os.getuid()).pw_name] if self.sudo and not as_root else []
        return [*self.sudo, "ip", "netns", "exec", self.name, *as_user, *cmd]


def figures(ns, cmd, what, timeout=900):
    """Runs one peer half inside `ns`; its figures and its stderr."""
    try:
        r = subprocess.run(ns.wrap(cmd), check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.exit(f"{what}: no result in {timeout} s: {shlex.join(cmd)}")
    if r.returncode != 0:
        sys.exit(f"{what} failed (exit {r.returncode}): {shlex.join(cmd)}\n{r.stderr.strip()[-3000:]}")
    try:
        values = [float(x) for x in r.stdout.split()]
    except ValueError:
        sys.exit(f"{what} printed something other than figures:\n{r.stdout[-2000:]}")
    return values, r.stderr


def chromium_pair(mode, *args):
    return ["node", str(LIB / "chromium_pair.mjs"), mode, *map(str, args)]


def aiortc_pair(mode, *args):
    return [str(PYTHON), str(LIB / "aiortc_pair.py"), mode, *map(str, args)]


# ---- the natter hook ----------------------------------------------------------------
# natter's halves are examples of crates/natter-io, written by the
# PeerConnection work (issue 5). Until they exist the benches say so and
# print no natter figure and no ratio.

NATTER_CRATE = "natter-io"


def natter_example(name):
    """The path of natter's example `name`, built first when its source
    exists; None when neither the source nor a binary exists."""
    crate = REPO / "crates" / NATTER_CRATE
    binary = REPO / "target" / "release" / "examples" / name
    if (crate / "examples" / f"{name}.rs").exists() or (crate / "examples" / name / "main.rs").exists():
        build = ["cargo", "build", "--quiet", "--release", "-p", NATTER_CRATE, "--example", name]
        if subprocess.run(build, check=False, cwd=REPO).returncode != 0:
            sys.exit(f"cargo build --release -p {NATTER_CRATE} --example {name} failed")
    return binary if binary.exists() else None


def not_built(name):
    return f"natter: not built yet (crates/{NATTER_CRATE} example {name})"


# ---- printing ---------------------------------------------------------------------


def summary(values, unit):
    """'median unit (min .., max ..)' of one peer's figures."""
    return f"{statistics.median(values):9.2f} {unit}  (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def relay_rtt(stderr):
    """The page <-> driver round trip chromium_pair.mjs reports in answer mode, in ms."""
    m = re.search(r"WebSocket round trip ([0-9.]+) ms", stderr)
    return float(m.group(1)) if m else None
