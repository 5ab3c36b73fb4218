"""The local engine: this machine's cores, as worker processes (``--workers``, default: all cores).

NDJSON: the chunks of the input are partitioned to disk in parallel, the Medications joined per
Medication partition, then each patient partition is evaluated in a worker and written as one sorted
shard. Bundles: batches of files, each batch one shard. With one worker everything runs in this
process (no pool to start). Each worker holds one chunk, one partition or one batch at a time.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import orjson

from cds_service.screening import grouping
from cds_service.screening.engines import EngineRun, ScreeningPlan
from cds_service.screening.evaluate import screen_bundle, screen_patient
from cds_service.screening.inputs import BundleSource
from cds_service.screening.issues import InputIssues
from cds_service.screening.progress import Progress
from cds_service.screening.reads import TrialReads
from cds_service.trials import get_trial

BUNDLES_PER_TASK = 64
# Parsing and evaluating a record makes many short-lived dicts; the default threshold (700) runs a
# young-generation collection every few resources. Measured on a 400-patient Synthea population:
# about 15 % less CPU with the loaded modules frozen out of the collector and a higher threshold.
GC_THRESHOLD = (50_000, 20, 100)


def open_files_limit() -> int:
    """The soft limit on open files, raised to the hard limit first (macOS starts at 256)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 3 * grouping.MAX_PARTITIONS + 256
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        return wanted if soft == resource.RLIM_INFINITY else soft
    except (ImportError, ValueError, OSError):
        return 1024


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class LocalEngine:
    name = "local"

    def run(self, plan: ScreeningPlan, progress: Progress) -> EngineRun:
        with _Pool(plan.workers) as pool:
            if isinstance(plan.source, BundleSource):
                return _run_bundles(plan, pool, progress)
            return _run_ndjson(plan, pool, progress)


def _run_ndjson(plan: ScreeningPlan, pool: _Pool, progress: Progress) -> EngineRun:
    issues = InputIssues()
    chunks = plan.source.chunks()
    # A chunk writes up to three files per partition at once (patients, shared resources, pointers)
    # and the merge opens one shard per partition: stay inside the open-files limit.
    partitions = max(1, min(grouping.partition_count(plan.source.size, plan.workers), (open_files_limit() - 64) // 3))
    phase = progress.phase("grouping by patient", total=plan.source.size, unit="bytes")
    tasks = [(_partition_task, (chunk, i, plan.trial_id, plan.workdir, partitions)) for i, chunk in enumerate(chunks)]
    for (state, size) in pool.run(tasks):
        issues.merge(InputIssues.from_state(state))
        phase.advance(size)
    phase.done()
    tasks = [(_join_task, (plan.workdir, i, partitions)) for i in range(partitions)]
    for state in pool.run(tasks):
        issues.merge(InputIssues.from_state(state))
    shards_dir = plan.workdir / "results"
    shards_dir.mkdir(mode=0o700, exist_ok=True)
    phase = progress.phase("evaluating", total=issues.counts.get(grouping.PATIENTS_SEEN) or None, unit="patients")
    shards = []
    tasks = [(_evaluate_task, (plan.workdir, i, plan.trial_id, plan.as_of, shards_dir)) for i in range(partitions)]
    for shard, count, state in pool.run(tasks):
        issues.merge(InputIssues.from_state(state))
        shards.append(shard)
        phase.advance(count)
    phase.done()
    return EngineRun(sorted(shards), issues, {"workers": plan.workers, "partitions": partitions})


def _run_bundles(plan: ScreeningPlan, pool: _Pool, progress: Progress) -> EngineRun:
    issues = InputIssues()
    files = plan.source.files
    shards_dir = plan.workdir / "results"
    shards_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    batches = [files[i:i + BUNDLES_PER_TASK] for i in range(0, len(files), BUNDLES_PER_TASK)]
    phase = progress.phase("evaluating", total=len(files), unit="patients")
    tasks = [(_bundles_task, (plan.source.folder, batch, i, plan.trial_id, plan.as_of, shards_dir))
             for i, batch in enumerate(batches)]
    shards = []
    for shard, count, state in pool.run(tasks):
        issues.merge(InputIssues.from_state(state))
        shards.append(shard)
        phase.advance(count)
    phase.done()
    return EngineRun(sorted(shards), issues, {"workers": plan.workers, "batches": len(batches)})


# --- tasks: plain functions of picklable arguments, run in a worker ------------------------------

def _partition_task(chunk, index, trial_id, workdir, partitions) -> tuple[Any, int]:
    reads = TrialReads.from_trial(get_trial(trial_id))
    issues = grouping.partition_chunk(chunk, index, reads, workdir, partitions)
    size = (chunk.end if chunk.end is not None else chunk.path.stat().st_size) - chunk.start
    return issues.to_state(), size


def _join_task(workdir, index, partitions) -> Any:
    return grouping.join_medications(workdir, index, partitions).to_state()


def _evaluate_task(workdir, index, trial_id, as_of, shards_dir) -> tuple[Path, int, Any]:
    trial, issues = get_trial(trial_id), InputIssues()
    results = (screen_patient(trial, as_of, key, lines, issues)
               for key, lines in grouping.patients_of_partition(workdir, index))
    shard = shards_dir / f"r{index:06d}.ndjson"
    count = write_shard(shard, results)
    return shard, count, issues.to_state()


def _bundles_task(folder, batch, index, trial_id, as_of, shards_dir) -> tuple[Path, int, Any]:
    trial, issues = get_trial(trial_id), InputIssues()
    reads = TrialReads.from_trial(trial)
    results = [screen_bundle(trial, reads, as_of, path, path.relative_to(folder).as_posix(), issues)
               for path in batch]
    shard = shards_dir / f"b{index:06d}.ndjson"
    write_shard(shard, sorted((r for r in results if r), key=lambda r: r["key"]))
    return shard, len(batch), issues.to_state()


def write_shard(path: Path, results: Iterable[dict | None]) -> int:
    """Results (already in key order) as one NDJSON shard, owner-only; the count written."""
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb", buffering=256 * 1024) as f:
        for result in results:
            if result is not None:
                f.write(orjson.dumps(result) + b"\n")
                count += 1
    return count


# --- the pool ---------------------------------------------------------------------------------------

def _settle_gc() -> None:
    """In a worker (or around inline work): the imported modules out of the collector's way."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


@contextmanager
def _settled_gc() -> Iterator[None]:
    before = gc.get_threshold()
    _settle_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


class _Pool:
    """Runs (function, args) tasks in worker processes — or inline with one worker — yielding the
    results as they complete, with at most two tasks per worker in flight."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Pool:
        if self.workers > 1:
            # fork: the workers start with the trial and the mappings already imported.
            self.executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                                initializer=_settle_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: list[tuple[Callable, tuple]]) -> Iterator[Any]:
        if self.executor is None:
            with _settled_gc():
                for fn, args in tasks:
                    yield fn(*args)
            return
        pending: set[Future] = set()
        queue = iter(tasks)
        for fn, args in queue:
            pending.add(self.executor.submit(fn, *args))
            if len(pending) >= 2 * self.workers:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
            for fn, args in queue:
                pending.add(self.executor.submit(fn, *args))
                if len(pending) >= 2 * self.workers:
                    break
