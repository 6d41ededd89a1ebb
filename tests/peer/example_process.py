"""natter-io's examples as processes for the Python tests (test_*.py):
each on a free port, its log in a file, and waited for until /healthz
answers."""

import socket
import subprocess
import time
import urllib.request


def start(binary, log_path, args=(), stdout=subprocess.DEVNULL):
    """Starts `binary --listen 127.0.0.1:PORT --address 127.0.0.1 ARGS`
    with its stderr in `log_path`; returns (process, log file, URL) once
    its /healthz answers."""
    if not binary.exists():
        raise AssertionError(f'no {binary.name} example at {binary}: run "cargo build --release -p natter-io --examples"')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    process = subprocess.Popen(
        [str(binary), "--listen", f"127.0.0.1:{port}", "--address", "127.0.0.1", *args],
        stdout=stdout, stderr=log, text=True,
    )
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{binary.name} exited early; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return process, log, url
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{binary.name} did not answer /healthz in 15 s; see {log_path}")
            time.sleep(0.05)  # polls the port until the server listens
