"""Instructions per hook call (valgrind's callgrind): a CPU measure that other work on the machine cannot move.

    .venv/bin/python bench/instructions.py [--calls 40] [--code DIR] [--seed p07-many-observations]

Runs bench/profile_hook.py's app set-up twice under ``valgrind --tool=callgrind`` — once with no hook
call after the warm-up and once with ``--calls`` more — and divides the difference in instructions
executed by the number of calls. Slow (valgrind runs Python ~50× slower): minutes per run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVER = r'''
import gc, os, sys
sys.path.insert(0, {code!r}); sys.path.insert(1, {root!r})
from bench.common import hook_request
from cds_service.app import create_app
from cds_service.security.request_log import configure_logging
configure_logging(stream=open(os.devnull, "w"))
body, _ = hook_request({seed!r})
app = create_app({{"TRIALCDS_DEV": True, "TRIALCDS_DATABASE_URL": "sqlite:///" + {db!r}}})
gc.collect(); gc.freeze()
try:
    from cds_service.commands.serve import GC_THRESHOLD
    gc.set_threshold(*GC_THRESHOLD)
except ImportError:
    pass
client = app.test_client()
for _ in range(10 + {calls}):
    assert client.post("/cds-services/nct05271110", data=body, content_type="application/json").status_code == 200
'''


def instructions(code: str, seed: str, calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "driver.py"
        script.write_text(DRIVER.format(code=code, root=str(ROOT), seed=seed, calls=calls,
                                        db=str(Path(tmp) / "store.sqlite")))
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                               sys.executable, str(script)], capture_output=True, text=True, timeout=3600)
        match = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or not match:
            raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--code", default=str(ROOT))
    parser.add_argument("--seed", default="p07-many-observations")
    args = parser.parse_args(argv)
    base = instructions(args.code, args.seed, 0)
    more = instructions(args.code, args.seed, args.calls)
    per_call = (more - base) / args.calls
    print(f"{args.code} ({args.seed}): {per_call / 1e6:.2f} million instructions per hook call "
          f"({args.calls} calls; {base / 1e9:.2f} G for the set-up and warm-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
