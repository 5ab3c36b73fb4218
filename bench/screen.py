#!/usr/bin/env python3
"""``make bench-screen``: ``trialcds screen`` on 1 000, 10 000 and 100 000 patients, next to the floor.

For each population (scripts/population.py: Synthea background + re-identified seed PDAC patients,
replicated; cached in .cache/population/):

- **floor**: read every NDJSON line of the same files and parse it with orjson, nothing else, in one
  process — the least any screen of these files must do;
- **local, 1 worker** and **local, 2 workers**: ``trialcds screen --ndjson … --workers N``;
- **spark, local[2]**: ``trialcds screen --ndjson … --engine spark --spark-master local[2]``.

Each run is its own process, timed on the wall clock, with its peak memory sampled every 50 ms as the
sum of the RSS of the process and all its children (worker processes, Spark's JVM and Python
workers). Printed per run: seconds, patients/s, MB/s, the time as a multiple of the floor, peak RSS;
then the targets (local at 2 workers within 2x the floor; peak memory at 100 000 vs 10 000 within
10 %; Spark's outputs identical to the local engine's). Results also go to var/bench-screen.json.

    .venv/bin/python bench/screen.py [--sizes 1000,10000,100000] [--skip-spark] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.population import build, manifest_of  # noqa: E402

FLOOR_CODE = """
import sys, orjson
from pathlib import Path
n = 0
for path in sorted(Path(sys.argv[1]).glob("*.ndjson")):
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
print(n)
"""
SAMPLE_S = 0.05
COMPARED = ("evaluations.ndjson", "candidates.csv")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_run(command: list[str], env: dict | None = None) -> tuple[float, int, str, float]:
    """(wall seconds, peak RSS bytes of the process tree, stdout, CPU seconds of the whole tree) of
    one command. CPU time is reported too because wall time on a shared machine includes waiting
    for the cores."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    root = psutil.Process(process.pid)
    peak = 0
    cpu_seen: dict[int, float] = {}  # pid -> its last sampled CPU seconds (Spark's JVM is never reaped by us)
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            total = 0
            for p in tree:
                try:
                    total += p.memory_info().rss
                    times = p.cpu_times()
                    cpu_seen[p.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(SAMPLE_S)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command[:4])}… exited {process.returncode}: {err.decode()[-800:]}")
    # reaped processes (the local engine's workers) report exactly through rusage; the sampled sum
    # catches what rusage cannot see (the JVM and Spark's Python workers)
    return seconds, peak, out.decode(), max(_children_cpu() - cpu_before, sum(cpu_seen.values()))


def run_size(patients: int, spark: bool, scratch: Path, one_worker: bool = True) -> dict:
    folder = build(patients)
    manifest = manifest_of(folder)
    size = sum(p.stat().st_size for p in folder.glob("*.ndjson"))
    py = sys.executable
    rows = []
    seconds, peak, out, cpu = peak_rss_run([py, "-c", FLOOR_CODE, str(folder)])
    rows.append({"engine": "floor (orjson parse only)", "seconds": seconds, "peakRss": peak, "cpu": cpu,
                 "lines": int(out.strip())})
    runs = [("local, 1 worker", ["--workers", "1"])] if one_worker else []
    runs.append(("local, 2 workers", ["--workers", "2"]))
    if spark:
        runs.append(("spark, local[2]", ["--engine", "spark", "--spark-master", "local[2]"]))
    outs = {}
    for name, extra in runs:
        out_dir = scratch / f"{patients}-{name.split(',')[0]}-{len(outs)}"
        shutil.rmtree(out_dir, ignore_errors=True)
        command = [py, "-m", "cds_service", "screen", "--ndjson", str(folder), "--out", str(out_dir),
                   "--as-of", manifest["asOf"], "--quiet", *extra]
        seconds, peak, _, cpu = peak_rss_run(command)
        rows.append({"engine": name, "seconds": seconds, "peakRss": peak, "cpu": cpu})
        outs[name] = out_dir
    floor = rows[0]["seconds"]
    for row in rows:
        row["patientsPerSecond"] = patients / row["seconds"]
        row["mbPerSecond"] = size / 1e6 / row["seconds"]
        row["timesFloor"] = row["seconds"] / floor
        row["cpuTimesFloor"] = row["cpu"] / rows[0]["cpu"]
    identical = None
    if spark:
        identical = all((outs["spark, local[2]"] / f).read_bytes() == (outs["local, 2 workers"] / f).read_bytes()
                        for f in COMPARED)
    one_vs_two = None
    if one_worker:
        one_vs_two = all((outs["local, 1 worker"] / f).read_bytes() == (outs["local, 2 workers"] / f).read_bytes()
                         for f in COMPARED)
    for out_dir in outs.values():
        shutil.rmtree(out_dir, ignore_errors=True)
    return {"patients": patients, "bytes": size, "resources": sum(manifest["resources"].values()),
            "rows": rows, "sparkIdentical": identical, "localWorkersIdentical": one_vs_two}


def print_size(result: dict) -> None:
    print(f"\n{result['patients']:,} patients, {result['resources']:,} resources, {result['bytes'] / 1e6:,.0f} MB of NDJSON")
    print(f"  {'engine':<28} {'seconds':>8} {'patients/s':>11} {'MB/s':>7} {'x floor':>8} {'peak RSS':>10} "
          f"{'CPU s':>7} {'CPU x floor':>12}")
    for row in result["rows"]:
        print(f"  {row['engine']:<28} {row['seconds']:>8.1f} {row['patientsPerSecond']:>11,.0f} "
              f"{row['mbPerSecond']:>7.1f} {row['timesFloor']:>8.2f} {row['peakRss'] / 2**20:>8.0f} MB "
              f"{row['cpu']:>7.1f} {row['cpuTimesFloor']:>12.2f}")
    if result["sparkIdentical"] is not None:
        print(f"  Spark outputs identical to the local engine's: {'yes' if result['sparkIdentical'] else 'NO'}")
    if result["localWorkersIdentical"] is not None:
        print(f"  1 and 2 workers give identical outputs: {'yes' if result['localWorkersIdentical'] else 'NO'}")


def print_targets(results: list[dict]) -> None:
    print("\nTargets")
    for result in results:
        two = next(r for r in result["rows"] if r["engine"] == "local, 2 workers")
        verdict = "met" if two["timesFloor"] <= 2 else "NOT met"
        print(f"  {result['patients']:>7,} patients: local at 2 workers {two['timesFloor']:.2f}x the floor (target 2x): {verdict}")
    by_size = {r["patients"]: r for r in results}
    if 10_000 in by_size and 100_000 in by_size:
        for engine in ("local, 2 workers", "local, 1 worker"):
            rows = [next((r for r in by_size[n]["rows"] if r["engine"] == engine), None) for n in (10_000, 100_000)]
            if None in rows:
                continue
            small, large = rows[0]["peakRss"], rows[1]["peakRss"]
            growth = large / small - 1
            print(f"  peak memory, {engine}, 100 000 vs 10 000: {growth * 100:+.1f} % (target within 10 %): "
                  f"{'met' if abs(growth) <= 0.10 else 'NOT met'}")
    spark = [r["sparkIdentical"] for r in results if r["sparkIdentical"] is not None]
    if spark:
        print(f"  Spark outputs identical: {'met' if all(spark) else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-one-worker", action="store_true", help="local engine at 2 workers only")
    parser.add_argument("--previous", type=Path, action="append", default=[],
                        help="a var/bench-screen.json of an earlier run to include in the targets")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"trialcds screen benchmark — {platform.node()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-screen-") as scratch:
        for patients in sizes:
            started = time.monotonic()
            build(patients)
            print(f"(population of {patients:,}: ready in {time.monotonic() - started:.0f} s)", flush=True)
            result = run_size(patients, not args.skip_spark, Path(scratch), not args.skip_one_worker)
            print_size(result)
            results.append(result)
            sys.stdout.flush()
    earlier = [r for path in args.previous for r in json.loads(path.read_text())]
    print_targets(sorted(earlier + results, key=lambda r: r["patients"]))
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    (var / "bench-screen.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
