"""Fixtures for integration tests that need a real HAPI FHIR server.

``fhir_base_url`` is the FHIR base of the project's own HAPI FHIR JPA server
(hapi/, FHIR R4, in-memory H2):

* if ``TRIALCDS_TEST_FHIR_URL`` is set, that server is used as it is;
* otherwise ``scripts/fhir-up.sh`` builds (first time: minutes) and starts it on
  ``TRIALCDS_TEST_FHIR_PORT`` (default 8090), or reuses one that an earlier
  fhir-up left running; at the end of the session ``scripts/fhir-down.sh`` stops
  it, but only if this session started it.

When Java 17+ or Maven is missing (fhir-up.sh exit code 3) the tests that use it
are skipped with the reason on a developer machine, and fail under CI (``CI`` set),
where they must always run; any other failure to start fails them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FHIR_UP = REPO_ROOT / "scripts" / "fhir-up.sh"
FHIR_DOWN = REPO_ROOT / "scripts" / "fhir-down.sh"
PID_FILE = REPO_ROOT / "var" / "hapi.pid"

# The first run builds the server with Maven (downloads from Maven Central) and
# fhir-up.sh itself waits up to 300 s for start-up.
FHIR_UP_TIMEOUT_S = 1800


def _running_pid() -> str | None:
    """The pid in var/hapi.pid if that process is alive, else None."""
    try:
        pid = PID_FILE.read_text().strip()
    except OSError:
        return None
    if not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except OSError:
        return None
    return pid


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@pytest.fixture(scope="session")
def fhir_base_url():
    external = os.environ.get("TRIALCDS_TEST_FHIR_URL", "").strip()
    if external:
        yield external.rstrip("/")
        return

    env = dict(os.environ)
    env["FHIR_PORT"] = os.environ.get("TRIALCDS_TEST_FHIR_PORT", "8090")

    pid_before = _running_pid()
    try:
        proc = subprocess.run(
            ["bash", str(FHIR_UP)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=FHIR_UP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/fhir-up.sh did not finish within {FHIR_UP_TIMEOUT_S} s", pytrace=False)
    if proc.returncode == 3 and os.environ.get("CI"):
        pytest.fail(f"CI must run the HAPI integration tests: {_tail(proc.stderr, 5)}", pytrace=False)
    if proc.returncode == 3:
        pytest.skip(f"HAPI FHIR test server unavailable: {_tail(proc.stderr, 5)}")
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/fhir-up.sh failed (exit {proc.returncode}):\n{_tail(proc.stderr)}",
            pytrace=False,
        )
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if not lines or not lines[-1].startswith("http"):
        pytest.fail(
            f"scripts/fhir-up.sh printed no base URL:\n{proc.stdout}\n{_tail(proc.stderr)}",
            pytrace=False,
        )
    base_url = lines[-1].rstrip("/")

    pid_after = _running_pid()
    started_here = pid_after is not None and pid_after != pid_before

    yield base_url

    if started_here:
        subprocess.run(
            ["bash", str(FHIR_DOWN)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
