"""What bench/forward and bench/idle-memory share: building the programs
of bench/peers (natter, str0m and webrtc-rs side by side, outside the main
workspace so that CI never builds the competitors), running one and
reading its `name value` lines, and writing the run's output to
bench/results/<bench>-<date>.txt as well as to the terminal.
"""

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
MANIFEST = REPO / "bench" / "peers" / "Cargo.toml"
TARGET = REPO / "target" / "bench-peers"
PROFILE = "release profile of bench/peers/Cargo.toml (opt-level 3, no LTO, codegen-units 4)"


def build(binary):
    """Builds bench/peers' `binary` in release; its path."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET), CARGO_PROFILE_RELEASE_LTO="false")
    cmd = ["cargo", "build", "--release", "--quiet", "--manifest-path", str(MANIFEST), "--bin", binary]
    log(f"building {binary}: {' '.join(cmd[:-4])} ... (CARGO_TARGET_DIR=target/bench-peers)")
    if subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode != 0:
        sys.exit(f"cargo build of bench/peers --bin {binary} failed")
    return TARGET / "release" / binary


def figures(cmd, what, timeout=3600):
    """Runs one program; its `name value` lines as a dict (values as float
    where they parse)."""
    try:
        r = subprocess.run([str(c) for c in cmd], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.exit(f"{what}: no result in {timeout} s")
    if r.returncode != 0:
        sys.exit(f"{what} failed (exit {r.returncode}):\n{r.stderr.strip()[-3000:]}")
    out = {}
    for line in r.stdout.splitlines():
        name, _, value = line.partition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            out[name] = value
    return out


class Results:
    """Everything printed (stdout) and logged (stderr) also goes to
    bench/results/<bench>-<date>.txt, headed by the machine and its load."""

    def __init__(self, bench, argv, label=""):
        date = datetime.date.today().isoformat()
        stem = f"{bench}-{date}{'-' + label if label else ''}"
        # Never another run's file: a second run of the day (or label) gets -2, -3, ...
        self.path = REPO / "bench" / "results" / f"{stem}.txt"
        again = 2
        while self.path.exists():
            self.path = REPO / "bench" / "results" / f"{stem}-{again}.txt"
            again += 1
        self.file = open(self.path, "x")
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        self.write(f"# bench/{bench} {' '.join(argv)}, {date}, {cpu}, {os.cpu_count()} cores, {platform.release()}\n")
        self.load("before")

    def load(self, when):
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        self.write(f"# load {when}: {uptime}\n")

    def write(self, text):
        self.file.write(text)
        self.file.flush()


RESULTS = None


def start(bench, label=""):
    """Starts bench/results/<bench>-<date>.txt, or <bench>-<date>-<label>.txt
    (with -2, -3, ... after it when that file is there already)."""
    global RESULTS
    RESULTS = Results(bench, sys.argv[1:], label)
    return RESULTS


def out(text=""):
    print(text, flush=True)
    if RESULTS:
        RESULTS.write(text + "\n")


def log(text):
    print(text, file=sys.stderr, flush=True)
    if RESULTS:
        RESULTS.write(text + "\n")


def figures_raw(cmd, timeout=600):
    """Runs a program; its stdout."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed (exit {r.returncode}):\n{r.stderr.strip()[-3000:]}")
    return r.stdout
