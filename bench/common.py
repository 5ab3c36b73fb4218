"""Shared pieces of the bench: the request body, process handling, HTTP waits, stats."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
SERVICE_ID = "nct05271110"
DEFAULT_SEED = "p07-many-observations"


# --- the request -------------------------------------------------------------------------------------

def hook_request(seed: str = DEFAULT_SEED, *, prefetch: bool = True, fhir_server: str | None = None,
                 today: date | None = None) -> tuple[bytes, str]:
    """(JSON body, patient id) of a patient-view call for a seed patient rebased to today.

    With ``prefetch`` the body carries the complete prefetch the trial asks for, built by
    ``prefetch_from_bundle``; without it, only the context (and ``fhirServer``)."""
    import orjson

    from cds_service.seeding import anchor_date, patient_id, prefetch_from_bundle, rebase_bundle, seed_bundles
    from cds_service.trials import get_trial

    bundle = rebase_bundle(seed_bundles()[seed], anchor_date(), today or date.today())
    pid = patient_id(bundle)
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=0x5EED)),
        "context": {"userId": "Practitioner/bench", "patientId": pid},
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
    if prefetch:
        body["prefetch"] = prefetch_from_bundle(bundle, get_trial())
    return orjson.dumps(body), pid


def prefetch_resources(prefetch: dict) -> list:
    """The (resource, fullUrl) pairs a prefetch holds, as the service reads them."""
    from fhir_mappings.record import resources_of_bundle

    pairs: list = []
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            pairs.extend(resources_of_bundle(value))
        else:
            pairs.append((value, None))
    return pairs


# --- processes -----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process in its own process group, stopped (group-wide) on ``stop()`` or ``with`` exit."""

    def __init__(self, name: str, argv: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        self.name = name
        VAR.mkdir(parents=True, exist_ok=True)
        self.log_path = VAR / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self) -> list[int]:
        """Pids of the server's direct child processes (gunicorn / uvicorn workers)."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        if not self._log.closed:
            self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_http(url: str, server: Server | None = None, timeout: float = 60.0, method: str = "GET") -> None:
    """Wait until ``url`` answers at all (any HTTP status); fail early if the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and not server.alive():
            raise RuntimeError(f"{server.name} exited during start-up:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s"
                       + (f":\n{server.log_tail()}" if server else ""))


def vmrss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- stats ---------------------------------------------------------------------------------------------

def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
