"""Profile the prefetch hook path in-process (Flask test client, no network) with cProfile.

    .venv/bin/python bench/profile_hook.py [--seed p07-many-observations] [--calls 300] [--top 30]
        [--sort cumtime|tottime] [--database sqlite:///...] [--out var/bench/hook.prof]

Builds the app as ``trialcds serve --dev`` does (its own SQLite file under var/bench/ unless
``--database`` says otherwise), sends the seed patient's full prefetch (rebased to today) as many
times as asked, and prints the time per call and the top functions. ``--evaluation`` profiles
``evaluate_resources`` alone on the same record instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import hook_request, prefetch_resources  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="p07-many-observations")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumtime", choices=("cumtime", "tottime"))
    parser.add_argument("--database", default=None)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "hook.prof"))
    parser.add_argument("--evaluation", action="store_true", help="profile evaluate_resources alone")
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    import orjson

    body, patient = hook_request(args.seed)
    if args.evaluation:
        from cds_service.criteria import evaluate_resources
        from cds_service.trials import get_trial

        trial, today = get_trial(), date.today()
        resources = prefetch_resources(orjson.loads(body)["prefetch"])

        def call() -> None:
            evaluate_resources(trial, resources, today, patient_id=patient)
    else:
        from cds_service.app import create_app

        database = args.database or f"sqlite:///{ROOT / 'var' / 'bench' / 'profile.sqlite'}"
        app = create_app({"TRIALCDS_DEV": True, "TRIALCDS_DATABASE_URL": database})
        gc.collect()
        gc.freeze()  # as trialcds serve does in each worker
        client = app.test_client()
        path = "/cds-services/nct05271110"

        def call() -> None:
            response = client.post(path, data=body, content_type="application/json")
            if response.status_code != 200:
                raise SystemExit(f"HTTP {response.status_code}: {response.get_data()[:300]!r}")

    for _ in range(min(30, args.calls)):  # warm-up
        call()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.calls):
        call()
    per_call = (time.perf_counter() - start) / args.calls
    cpu_per_call = (time.process_time() - cpu_start) / args.calls
    print(f"{'evaluate_resources' if args.evaluation else 'hook call'} ({args.seed}): "
          f"{per_call * 1000:.3f} ms per call without the profiler ({cpu_per_call * 1000:.3f} ms CPU), "
          f"{args.calls} calls")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.calls):
        call()
    profiler.disable()
    profiler.dump_stats(args.out)
    pstats.Stats(args.out).sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
