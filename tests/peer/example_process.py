"""natter's servers as processes for the Python tests (test_*.py):
`natter echo` and natter-io's examples, each on a free port, its log in
a file, and waited for until /healthz answers."""

import socket
import subprocess
import time
import urllib.request


def start(binary, log_path, args=(), stdout=subprocess.DEVNULL, command=()):
    """Starts `binary COMMAND --listen 127.0.0.1:PORT --address 127.0.0.1 ARGS`
    (COMMAND: natter's subcommand, say ("echo",)) with its stderr in
    `log_path`; returns (process, log file, URL) once its /healthz answers."""
    if not binary.exists():
        build = "cargo build --release -p natter-server" if command else "cargo build --release -p natter-io --examples"
        raise AssertionError(f'no {binary.name} at {binary}: run "{build}"')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    process = subprocess.Popen(
        [str(binary), *command, "--listen", f"127.0.0.1:{port}", "--address", "127.0.0.1", *args],
        stdout=stdout, stderr=log, text=True,
    )
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{binary.name} {' '.join(command)} exited early; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return process, log, url
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{binary.name} did not answer /healthz in 15 s; see {log_path}")
            time.sleep(0.05)  # polls the port until the server listens
