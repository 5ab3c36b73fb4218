"""A real ``trialcds serve`` process for tests: on a free port, healthy before use, always stopped.

Its output goes to a file, never to a pipe: an unread pipe fills up with the JSON log lines and
then blocks the server in the middle of a test run.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The console script, as operators run it.
TRIALCDS = str(Path(sys.executable).with_name("trialcds"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_serve(args: list[str], env: dict[str, str], log_path: Path, port: int | None = None,
                  start_timeout_s: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    """``trialcds serve --port <port or a free one> <args>`` → (base URL, process), stopped on the way out."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([TRIALCDS, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                                   env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            _wait_until_healthy(base, process, log_path, start_timeout_s)
            yield base, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"trialcds serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"trialcds serve did not become healthy in {timeout_s:g} s:\n{log_path.read_text()[-3000:]}")
