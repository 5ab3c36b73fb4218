"""Evaluation time as a patient's record grows (``make bench`` part c), in-process.

Records of 10, 100, 1 000 and 10 000 resources are synthesised from one seed patient: its
Observations, Conditions and medication resources are replicated with new ids and every date
moved back by a few days (replica *k* by 7·k days, with a deterministic jitter), so the record
looks like years of history rather than 10 000 copies of one day. Each record goes through
``evaluate_resources`` (plain JSON in, the evaluation out) a bounded number of times; the median
CPU time (``time.process_time``) is kept. Prints one JSON object (``--json``) or a small table.

    .venv/bin/python bench/growth.py [--seed p07-many-observations] [--sizes 10,100,1000,10000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cds_service.criteria import evaluate_resources  # noqa: E402
from cds_service.seeding import anchor_date, patient_id, rebase_bundle, seed_bundles  # noqa: E402
from cds_service.trials import get_trial  # noqa: E402

REPLICATED = {"Observation", "Condition", "MedicationStatement", "MedicationRequest", "MedicationAdministration"}
DEFAULT_SEED = "p07-many-observations"
TIME_BUDGET_S = 3.0  # per size, at most (plus one run)
MAX_REPEATS = 200


def synthesise(bundle: dict, size: int, rng: random.Random) -> list[dict]:
    """``size`` resources of one patient: the seed's own first, then jittered replicas."""
    resources = [e["resource"] for e in bundle["entry"]]
    patient = [r for r in resources if r["resourceType"] == "Patient"]
    others = [r for r in resources if r["resourceType"] != "Patient"]
    out = patient + others
    if size <= len(out):
        return out[:size]
    templates = [r for r in others if r["resourceType"] in REPLICATED]
    anchor = date(2000, 1, 1)
    k = 0
    while len(out) < size:
        k += 1
        for template in templates:
            if len(out) >= size:
                break
            days_back = 7 * k + rng.randint(0, 6)
            moved = rebase_bundle({"entry": [{"resource": template}]}, anchor, anchor - timedelta(days=days_back))
            replica = moved["entry"][0]["resource"]
            replica["id"] = f"{template['id']}-r{k}"
            out.append(replica)
    return out


def time_evaluation(trial, resources: list[dict], as_of: date, pid: str,
                    budget_s: float = TIME_BUDGET_S) -> tuple[float, int, str]:
    """Median seconds per evaluation over a bounded number of runs (time- and count-bounded)."""
    evaluation = evaluate_resources(trial, resources, as_of, pid)  # warm-up
    times: list[float] = []
    budget_end = time.perf_counter() + budget_s
    while len(times) < MAX_REPEATS and (len(times) < 3 or time.perf_counter() < budget_end):
        # CPU time of this (single-threaded) process: other work on a shared machine does not count.
        start = time.process_time()
        evaluate_resources(trial, resources, as_of, pid)
        times.append(time.process_time() - start)
    return statistics.median(times), len(times), evaluation.verdict


def without_gc(trial, resources: list[dict], as_of: date, pid: str) -> float:
    """The same measurement with CPython's cyclic garbage collector off (a diagnostic: how much of
    the growth in time per resource is the collector scanning a large live heap)."""
    gc.collect()
    gc.disable()
    try:
        return time_evaluation(trial, resources, as_of, pid, budget_s=1.5)[0]
    finally:
        gc.enable()


def fit_slope(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares line t = a + b·n through (n, t): returns (b, a)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x


def run(seed: str, sizes: list[int]) -> dict:
    trial = get_trial()
    today = date.today()
    bundle = rebase_bundle(seed_bundles()[seed], anchor_date(), today)
    pid = patient_id(bundle)
    rng = random.Random(20251124)
    rows = []
    for size in sizes:
        resources = synthesise(bundle, size, rng)
        seconds, repeats, verdict = time_evaluation(trial, resources, today, pid)
        row = {"resources": len(resources), "ms": seconds * 1000, "us_per_resource": seconds * 1e6 / len(resources),
               "repeats": repeats, "verdict": verdict}
        if size >= 1000:
            row["ms_without_gc"] = without_gc(trial, resources, today, pid) * 1000
        rows.append(row)
    slope_s, intercept_s = fit_slope([(r["resources"], r["ms"] / 1000) for r in rows])
    by_size = {r["resources"]: r for r in rows}
    linearity = linearity_nogc = None
    if 1000 in by_size and 10000 in by_size:
        linearity = by_size[10000]["us_per_resource"] / by_size[1000]["us_per_resource"]
        linearity_nogc = by_size[10000]["ms_without_gc"] / by_size[1000]["ms_without_gc"] / 10
    return {"seed": seed, "rows": rows, "slope_us_per_resource": slope_s * 1e6, "intercept_ms": intercept_s * 1000,
            "per_resource_ratio_10000_vs_1000": linearity,
            "per_resource_ratio_10000_vs_1000_without_gc": linearity_nogc}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default=DEFAULT_SEED)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.seed, [int(s) for s in args.sizes.split(",")])
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"seed {result['seed']}")
    for row in result["rows"]:
        print(f"  {row['resources']:>6} resources  {row['ms']:9.3f} ms  {row['us_per_resource']:7.2f} µs/resource"
              f"  ({row['repeats']} runs, {row['verdict']})")
    print(f"  slope {result['slope_us_per_resource']:.2f} µs/resource, intercept {result['intercept_ms']:.3f} ms")
    if result["per_resource_ratio_10000_vs_1000"] is not None:
        print(f"  time per resource at 10 000 / at 1 000: {result['per_resource_ratio_10000_vs_1000']:.2f}"
              f" ({result['per_resource_ratio_10000_vs_1000_without_gc']:.2f} with the cyclic GC off)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
