"""Run the service in a child process on 127.0.0.1 and a free port, wait for readiness, stop it
by PID with SIGTERM: for the tests, the load benchmark and notebooks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(model: Path | str, *flags: str, env: dict[str, str] | None = None, ready_timeout: float = 90.0,
                   threads: int = 1) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yields (base URL, process); the process's log path is ``proc.log_path``."""
    port = free_port()
    cmd = [sys.executable, "-m", "ebm_purify.cli", "serve", "--model", str(model), "--port", str(port), "--threads", str(threads), *flags]
    log = tempfile.NamedTemporaryFile("w", prefix=f"ebm-purify-server-{port}-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    proc.log_path = Path(log.name)  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:  # poll readiness (bounded), the server's own signal that it can serve
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {ready_timeout}s; see {log.name}")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
