"""Fixtures of the eligibility-core tests. The FHIR builders live in ``builders.py`` beside this file.

``mcode_examples`` is the ``package/example/`` folder of the official mCODE 4.0.0 FHIR package,
fetched once with ``npm pack hl7.fhir.us.mcode@4.0.0`` into ``<repo>/.cache/mcode/`` (gitignored)
and reused from there; the tests that use it are skipped only when npm itself is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MCODE_PACKAGE = "hl7.fhir.us.mcode@4.0.0"
MCODE_CACHE = REPO_ROOT / ".cache" / "mcode" / "4.0.0"
NPM_TIMEOUT_S = 600


def _download_mcode(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed: cannot fetch the mCODE examples (npm pack {MCODE_PACKAGE})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        done = subprocess.run([npm, "pack", MCODE_PACKAGE, "--pack-destination", work, "--silent"],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        assert done.returncode == 0, f"npm pack {MCODE_PACKAGE} failed:\n{done.stderr[-2000:]}"
        tgz = next(Path(work).glob("*.tgz"))
        unpacked = Path(work) / "unpacked"
        with tarfile.open(tgz, "r:gz") as archive:
            archive.extractall(unpacked, filter="data")
        # A concurrent run may have finished first: keep whichever copy arrived first.
        try:
            unpacked.rename(target)
        except OSError:
            if not (target / "package" / "example").is_dir():
                raise


@pytest.fixture(scope="session")
def mcode_examples() -> Path:
    examples = MCODE_CACHE / "package" / "example"
    if not examples.is_dir():
        _download_mcode(MCODE_CACHE)
    assert examples.is_dir(), f"{examples} missing after unpacking {MCODE_PACKAGE}"
    return examples


@pytest.fixture(scope="session")
def mcode(mcode_examples):
    """Loads one mCODE example by file name (a fresh copy each time, so tests may edit it)."""

    def load(name: str) -> dict:
        path = mcode_examples / name
        assert path.is_file(), f"{name} is not among the mCODE 4.0.0 examples"
        return json.loads(path.read_text(encoding="utf-8"))

    return load
