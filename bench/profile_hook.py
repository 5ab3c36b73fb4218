"""Profile the prefetch hook path in-process (Flask test client, no network): CPU per stage, cProfile.

    .venv/bin/python bench/profile_hook.py [--seed p07-many-observations] [--calls 300] [--top 30]
        [--sort cumtime|tottime] [--database sqlite:///...] [--out var/bench/hook.prof]
        [--stages-only] [--json] [--code DIR]

Builds the app as ``trialcds serve --dev`` does (its own SQLite file under var/bench/ unless
``--database`` says otherwise; logging configured as the serving process does, into /dev/null),
sends the seed patient's full prefetch (rebased to today) as many times as asked, and prints

* the CPU time per call (``time.process_time``: every thread of this process, so work a call
  leaves to a background thread counts too);
* the per-stage breakdown: CPU time of this thread inside each stage of the hook call (authenticate,
  parse, suppression lookup, record gathering, pipeline check, mappings, criteria, card, card record,
  logging, response encoding), measured by wrapping those functions for a second series of calls.
  Stages nest (the mappings run inside the evaluation); each figure is exclusive of the stages
  inside it. "Flask/WSGI dispatch" is the rest: Werkzeug's request and response objects, Flask's
  dispatch and hooks, and the test client's own work;
* the top functions by cProfile (unless ``--stages-only``).

``--evaluation`` profiles ``evaluate_resources`` alone on the same record instead. ``--code DIR``
profiles another checkout's code (e.g. a ``git worktree`` of an earlier commit) with this bench.
``--json`` prints one JSON line (for ``make bench``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import json
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import hook_request, prefetch_resources  # noqa: E402

# (stage, module, attribute): the functions whose CPU time makes a stage. An attribute "Class.method"
# wraps a method on the class. Missing ones are skipped, so an older checkout (--code) is profiled
# with the same table. The order is the order of a hook call.
STAGES: list[tuple[str, str, str]] = [
    ("authenticate", "cds_service.hooks", "authenticate"),
    ("parse (JSON + request model)", "cds_service.hooks", "parse"),
    ("store: suppression lookup", "cds_service.store.feedback_store", "FeedbackStore.suppression"),
    ("store: suppression lookup", "cds_service.store", "FeedbackStore.is_suppressed"),  # 2163064: store.py
    ("store: suppression lookup", "cds_service.store", "FeedbackStore.suppression"),
    ("record: prefetch / fetch", "cds_service.hooks", "gather_record"),
    ("pipeline check (mappings)", "cds_service.hooks", "pipeline_reason"),
    ("mappings: index the record", "cds_service.criteria.engine", "PatientRecord.from_resources"),
    ("mappings: facts", "cds_service.criteria.engine", "extract_facts"),
    ("criteria", "cds_service.hooks", "evaluate_resources"),
    ("card", "cds_service.hooks", "card_for"),
    ("store: card record", "cds_service.store.feedback_store", "FeedbackStore.record_card"),
    ("store: card record", "cds_service.store", "FeedbackStore.record_card"),
    ("logging", "cds_service.security.request_log", "emit"),
    ("logging", "logging", "Logger.handle"),
    ("response encoding", "cds_service.hooks", "json_response"),
]
REST = "Flask/WSGI dispatch, test client"


class StageClock:
    """Exclusive CPU time (this thread) per stage; a stage entered inside another is taken out of it."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self._stack: list[list[Any]] = []  # [stage, start, time of stages nested inside]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        frame = [name, time.thread_time(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.thread_time() - frame[1]
            self.cpu[name] = self.cpu.get(name, 0.0) + elapsed - frame[2]
            if self._stack:
                self._stack[-1][2] += elapsed

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return function(*args, **kwargs)
        timed.__wrapped__ = function  # type: ignore[attr-defined]
        return timed


def install_stage_clock(clock: StageClock) -> list[tuple[object, str, Any]]:
    """Wrap every stage function that exists; returns what to put back."""
    undo: list[tuple[object, str, Any]] = []
    for name, module_name, attribute in STAGES:
        try:
            owner: object = importlib.import_module(module_name)
        except ImportError:
            continue
        *path, leaf = attribute.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if owner is None or leaf not in vars(owner) and not hasattr(owner, leaf):
            continue
        raw = vars(owner).get(leaf) if isinstance(owner, type) else getattr(owner, leaf)
        if raw is None or any(o is owner and a == leaf for o, a, _ in undo):
            continue
        if isinstance(raw, classmethod):
            wrapped: Any = classmethod(clock.wrap(name, raw.__func__))
        elif isinstance(raw, staticmethod):
            wrapped = staticmethod(clock.wrap(name, raw.__func__))
        else:
            wrapped = clock.wrap(name, raw)
        setattr(owner, leaf, wrapped)
        undo.append((owner, leaf, raw))
    return undo


def stage_table(clock: StageClock, calls: int, total_thread_cpu: float) -> list[dict[str, Any]]:
    order = list(dict.fromkeys(name for name, _, _ in STAGES))
    rows = [{"stage": name, "ms": clock.cpu[name] / calls * 1000} for name in order if name in clock.cpu]
    rest = total_thread_cpu - sum(clock.cpu.values())
    rows.append({"stage": REST, "ms": rest / calls * 1000})
    total = sum(row["ms"] for row in rows)
    for row in rows:
        row["share"] = row["ms"] / total if total else 0.0
    return rows


def print_stages(rows: list[dict[str, Any]], title: str) -> None:
    print(title)
    width = max(len(row["stage"]) for row in rows)
    for row in rows:
        print(f"  {row['stage']:<{width}}  {row['ms']:7.3f} ms  {row['share'] * 100:5.1f} %")
    print(f"  {'total (this thread)':<{width}}  {sum(row['ms'] for row in rows):7.3f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="p07-many-observations")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="series of --calls each; the lowest of each figure")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumtime", choices=("cumtime", "tottime"))
    parser.add_argument("--database", default=None)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "hook.prof"))
    parser.add_argument("--evaluation", action="store_true", help="profile evaluate_resources alone")
    parser.add_argument("--stages-only", action="store_true", help="CPU per call and per stage, no cProfile")
    parser.add_argument("--json", action="store_true", help="one JSON line with the figures (implies --stages-only)")
    parser.add_argument("--code", default=None, help="a checkout whose cds_service/fhir_mappings to profile")
    args = parser.parse_args(argv)
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
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
        from cds_service.security.request_log import configure_logging

        # As trialcds serve: JSON log lines through the redacting filter — here into /dev/null.
        configure_logging(stream=open(os.devnull, "w"))  # noqa: SIM115 — lives as long as the process
        database = args.database or f"sqlite:///{ROOT / 'var' / 'bench' / 'profile.sqlite'}"
        app = create_app({"TRIALCDS_DEV": True, "TRIALCDS_DATABASE_URL": database})
        gc.collect()
        gc.freeze()  # as trialcds serve does in each worker
        try:  # and its collector threshold, where the checkout has one
            from cds_service.commands.serve import GC_THRESHOLD
            gc.set_threshold(*GC_THRESHOLD)
        except ImportError:
            pass
        client = app.test_client()
        path = "/cds-services/nct05271110"

        def call() -> None:
            response = client.post(path, data=body, content_type="application/json")
            if response.status_code != 200:
                raise SystemExit(f"HTTP {response.status_code}: {response.get_data()[:300]!r}")

    for _ in range(min(30, args.calls)):  # warm-up
        call()
    # Series of ``calls`` calls, ``repeats`` times, alternating plain series (CPU and wall time per call)
    # and series with the stage clocks on; each figure is the lowest of its series: on a shared machine,
    # other work only ever adds time (cache and core contention), so the minimum is the steadiest estimate.
    walls, cpus, tables = [], [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(args.calls):
            call()
        walls.append((time.perf_counter() - start) / args.calls)
        cpus.append((time.process_time() - cpu_start) / args.calls)
        if args.evaluation:
            continue
        clock = StageClock()
        undo = install_stage_clock(clock)
        thread_start = time.thread_time()
        try:
            for _ in range(args.calls):
                call()
        finally:
            for owner, leaf, raw in undo:
                setattr(owner, leaf, raw)
        tables.append(stage_table(clock, args.calls, time.thread_time() - thread_start))
    per_call, cpu_per_call = min(walls), min(cpus)
    what = "evaluate_resources" if args.evaluation else "hook call"
    result: dict[str, Any] = {"seed": args.seed, "calls": args.calls, "repeats": args.repeats,
                              "body_bytes": len(body), "wall_ms": per_call * 1000, "cpu_ms": cpu_per_call * 1000}
    if tables:
        rows = [{"stage": row["stage"], "ms": min(t[i]["ms"] for t in tables)} for i, row in enumerate(tables[0])]
        total = sum(row["ms"] for row in rows)
        for row in rows:
            row["share"] = row["ms"] / total if total else 0.0
        result["stages"] = rows

    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{what} ({args.seed}, body {len(body):,} bytes): {per_call * 1000:.3f} ms per call without the "
          f"profiler ({cpu_per_call * 1000:.3f} ms CPU), lowest of {args.repeats} series of {args.calls} calls")
    if "stages" in result:
        print_stages(result["stages"], "CPU per stage, per call (exclusive; stage clocks on; each the lowest "
                                       "of its series):")
    if args.stages_only:
        return 0
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
