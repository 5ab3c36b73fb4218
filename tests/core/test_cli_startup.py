"""``trialcds evaluate`` and ``trialcds --help`` start at once: they import only what evaluation needs.

Checked in a fresh interpreter by the modules it ends up holding (not by timing, which a loaded
machine makes meaningless): no web server, database, HTTP client, JWT or FHIR-model library.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = REPO_ROOT / "seeds" / "patients" / "p01-eligible-gem-nabpac.json"
HEAVY = ("flask", "werkzeug", "sqlalchemy", "alembic", "gunicorn", "fhirpy", "fhir", "requests", "jwt", "httpx",
         "aiohttp", "cryptography", "pydantic", "pydantic_core", "orjson", "pyspark")

PROBE = """
import contextlib, io, json, sys
from cds_service.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help exits 0
        code = exc.code
print(json.dumps({"code": code, "output": out.getvalue(),
                  "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def _run(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [("evaluate", "--bundle", str(SEED), "--as-of", "2026-11-29"), ("--help",),
                                  ("evaluate", "--help")])
def test_imports_nothing_heavy(argv):
    result = _run(*argv)
    assert result["code"] == 0
    loaded = [name for name in HEAVY if name in result["modules"]]
    assert loaded == [], f"trialcds {' '.join(argv[:1])} imported {loaded}"


def test_evaluate_still_decides():
    result = _run("evaluate", "--bundle", str(SEED), "--as-of", "2026-11-29")
    assert "Verdict:" in result["output"]


def test_help_lists_every_subcommand_without_importing_them():
    from cds_service.cli import COMMANDS

    result = _run("--help")
    for name in COMMANDS:
        assert name in result["output"]
    command_modules = {module for module, _ in COMMANDS.values()}
    assert "cds_service" in result["modules"]
    probe = subprocess.run([sys.executable, "-c", "import sys, contextlib, io, json\nfrom cds_service.cli import main\n"
                            "with contextlib.redirect_stdout(io.StringIO()):\n"
                            "    try: main(['--help'])\n    except SystemExit: pass\n"
                            "print(json.dumps(sorted(sys.modules)))"],
                           capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    loaded = set(json.loads(probe.stdout.strip().splitlines()[-1]))
    assert not loaded & command_modules


def test_full_parser_still_available_for_every_command():
    from cds_service.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--bundle", "x.json"])
    assert args.command == "evaluate" and callable(args.func)
