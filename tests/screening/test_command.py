"""``trialcds screen`` as a user runs it: a real process, its exit code, stdout and stderr."""

from __future__ import annotations

import subprocess
import sys

from .helpers import evaluations, resources, write_ndjson


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cds_service.cli", "screen", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_a_run_prints_the_funnel_and_logs_no_patient_data(seeds, as_of, tmp_path):
    items = resources(seeds.values())
    folder = write_ndjson(tmp_path / "export", items)
    out = folder / "screening"  # inside the input folder: must not be read back next time
    for _ in range(2):
        done = run("--ndjson", folder, "--out", out, "--as-of", as_of)
        assert done.returncode == 0, done.stderr
    assert "screening funnel" in done.stdout and str(out / "report.html") in done.stdout
    # stderr is not a terminal here: plain progress lines, no cursor control, no names or ids.
    assert done.stderr and "\r" not in done.stderr and "\x1b" not in done.stderr
    names = {n.get("family") for r in items if r["resourceType"] == "Patient" for n in r.get("name", [])}
    ids = {r["id"] for r in items if r["resourceType"] == "Patient"}
    for secret in (names | ids) - {None}:
        assert secret not in done.stderr, secret
        assert secret not in done.stdout, secret
    assert len(evaluations(out)) == len(seeds)
