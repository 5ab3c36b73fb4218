"""The Spark engine: the same evaluation on Apache Spark (``pip install 'trialcds[spark]'``).

``--engine spark --spark-master URL`` (default ``local[*]``: Spark inside this process's JVM, all
cores; ``spark://host:7077`` a standalone cluster; anything ``SparkConf.setMaster`` takes). The
job, as ``screening.md`` fixes it:

1. read the NDJSON as text (``textFile``; ``.gz`` files too), each line numbered in input order;
2. key each line by patient with ``grouping.route`` — the function the local engine partitions by —
   after ``reads.TrialReads.wants`` dropped what the trial does not read; Medications are keyed by
   their reference and joined to every patient whose resources point at them;
3. group by patient, put each patient's lines back in input order (Medications after the rest, as
   the local engine's join files come after its chunk files);
4. evaluate each patient in the executors with ``evaluate.screen_patient`` — the local engine's
   function, which calls the hook's ``evaluate_resources``;
5. sort by patient id and bring the results to the driver one partition at a time
   (``toLocalIterator``), written as one key-sorted shard that ``outputs.py`` turns into the four
   outputs, exactly as it does for the local engine.

Input issues are counted in a Spark accumulator of ``InputIssues``. The trial definition travels to
the executors as JSON (a broadcast), so a worker needs the ``trialcds`` package but not this
checkout's ``seeds/``. On a real cluster the input folder must be readable by every worker at the same
path (a shared file system) — see docs/screening.md, "Screening on Spark / an existing cluster".
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from cds_service.screening import grouping
from cds_service.screening.engines import EngineRun, ScreeningPlan
from cds_service.screening.engines.local import write_shard
from cds_service.screening.evaluate import screen_bundle, screen_patient
from cds_service.screening.inputs import BundleSource, parse_line
from cds_service.screening.issues import InputIssues
from cds_service.screening.progress import Progress
from cds_service.screening.reads import TrialReads
from cds_service.trials import get_trial

try:  # an optional extra: the engine is imported only when chosen
    from pyspark import SparkConf, SparkContext, StorageLevel
    from pyspark.accumulators import AccumulatorParam
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("PySpark is not installed") from exc

APP_NAME = "trialcds screen"
MEDICATIONS_LAST = 1 << 62  # sort position of joined Medications: after every input line


class _IssuesParam(AccumulatorParam):
    """InputIssues as plain state tuples, merged on the driver."""

    def zero(self, value: Any) -> tuple[dict, dict]:
        return {}, {}

    def addInPlace(self, a: tuple[dict, dict], b: tuple[dict, dict]) -> tuple[dict, dict]:
        merged = InputIssues.from_state(a)
        merged.merge(InputIssues.from_state(b))
        return merged.to_state()


@lru_cache(maxsize=4)
def _trial(definition_json: str):
    """The trial in an executor, from the broadcast JSON (parsed once per Python worker). The first
    call also settles the worker's garbage collector as the local engine's workers do (the loaded
    modules frozen out of it, a higher young-generation threshold: less CPU per evaluation)."""
    from cds_service.criteria.models import TrialDefinition
    from cds_service.screening.engines.local import _settle_gc

    _settle_gc()
    return TrialDefinition.model_validate_json(definition_json)


# --- the per-line and per-patient functions the executors run -------------------------------------

def key_line(numbered: tuple[str, int], reads: TrialReads, accumulator) -> list[tuple[str, tuple]]:
    """One input line → ("P", patient) / ("M", Medication ref) / ("R", Medication ref) records."""
    text, position = numbered
    line = text.encode("utf-8")
    if not line.strip():
        return []
    resource = parse_line(line)
    issues = InputIssues()
    out: list[tuple[str, tuple]] = []
    if resource is None:
        issues.add("malformed-line", f"input line {position}")
    elif not reads.wants(resource):
        issues.add("not-read-by-trial")
    else:
        try:
            to = grouping.route(resource)
        except (TypeError, AttributeError, ValueError):
            to = grouping.Route(None)
        if to.medication:
            out.append((to.medication, ("M", position, line)))
        elif to.patient:
            out.append((to.patient, ("P", position, line)))
            out.extend((ref, ("R", to.patient)) for ref in to.points_at)
        else:
            issues.add("resource-without-patient", f"input line {position}: {resource['resourceType']}")
    if issues.counts:
        accumulator.add(issues.to_state())
    return out


def join_medication(group: tuple[str, Any], accumulator) -> list[tuple[str, tuple[int, bytes]]]:
    """One Medication reference with its Medication lines and the patients pointing at it."""
    _ref, records = group
    medications = sorted((r[1], r[2]) for r in records if r[0] == "M")
    patients = sorted({r[1] for r in records if r[0] == "R"})
    if medications and not patients:  # counted once per Medication reference, as the local join does
        accumulator.add(({"unreferenced-medication": 1}, {}))
    return [(patient, (MEDICATIONS_LAST + position, line)) for patient in patients for position, line in medications]


def evaluate_patient(group: tuple[str, Any], definition_json: str, as_of, accumulator) -> list[tuple[str, bytes]]:
    key, numbered_lines = group
    issues = InputIssues()
    lines = [line for _position, line in sorted(numbered_lines)]
    result = screen_patient(_trial(definition_json), as_of, key, lines, issues)
    if issues.counts:
        accumulator.add(issues.to_state())
    return [] if result is None else [(key, orjson.dumps(result))]


def evaluate_bundle(path_and_name: tuple[str, str], definition_json: str, as_of, accumulator) -> list[tuple[str, bytes]]:
    path, name = path_and_name
    issues = InputIssues()
    trial = _trial(definition_json)
    result = screen_bundle(trial, TrialReads.from_trial(trial), as_of, Path(path), name, issues)
    if issues.counts:
        accumulator.add(issues.to_state())
    return [] if result is None else [(result["key"], orjson.dumps(result))]


# --- the engine -------------------------------------------------------------------------------------

class SparkEngine:
    name = "spark"

    def run(self, plan: ScreeningPlan, progress: Progress) -> EngineRun:
        master = plan.spark_master or "local[*]"
        phase = progress.phase(f"starting Spark ({master})", unit="steps")
        sc = start_spark_context(master)
        phase.done()
        try:
            return self._run(sc, plan, master, progress)
        finally:
            sc.stop()

    def _run(self, sc: SparkContext, plan: ScreeningPlan, master: str, progress: Progress) -> EngineRun:
        trial = get_trial(plan.trial_id)
        definition = sc.broadcast(trial.model_dump_json())
        accumulator = sc.accumulator(({}, {}), _IssuesParam())
        as_of = plan.as_of
        parallelism = max(2, sc.defaultParallelism)

        phase = progress.phase("Spark: grouping and evaluating", unit="patients")
        if isinstance(plan.source, BundleSource):
            files = [(str(p), p.relative_to(plan.source.folder).as_posix()) for p in plan.source.files]
            keyed = (sc.parallelize(files, min(len(files), 4 * parallelism))
                     .flatMap(lambda f: evaluate_bundle(f, definition.value, as_of, accumulator)))
        else:
            reads = TrialReads.from_trial(trial)
            paths = ",".join(str(p) for p in plan.source.files)  # sorted: the local engine's order
            # Two branches read the keyed lines (patients, Medications): kept on disk so each line
            # is parsed, and its issues counted, once.
            records = (sc.textFile(paths, minPartitions=parallelism).zipWithIndex()
                       .flatMap(lambda numbered: key_line(numbered, reads, accumulator))
                       .persist(StorageLevel.DISK_ONLY))
            # Medication refs are "Medication/…", patient ids never contain "/": one key space.
            is_medication = records.filter(lambda kv: kv[1][0] != "P")
            joined = (is_medication.groupByKey()
                      .flatMap(lambda group: join_medication(group, accumulator)))
            by_patient = (records.filter(lambda kv: kv[1][0] == "P")
                          .map(lambda kv: (kv[0], (kv[1][1], kv[1][2])))
                          .union(joined)
                          .groupByKey(numPartitions=parallelism))
            keyed = by_patient.flatMap(lambda group: evaluate_patient(group, definition.value, as_of, accumulator))
        # sortByKey samples its input in a job of its own: without persisting, every patient would be
        # evaluated (and its issues counted) twice.
        keyed = keyed.persist(StorageLevel.MEMORY_AND_DISK)

        shards_dir = plan.workdir / "results"
        shards_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        shard = shards_dir / "spark.ndjson"

        def results():
            for _key, payload in keyed.sortByKey(numPartitions=parallelism).toLocalIterator():
                phase.advance()
                yield orjson.loads(payload)

        count = write_shard(shard, results())
        phase.done()
        issues = InputIssues.from_state(accumulator.value)
        return EngineRun([shard], issues, {"master": master, "parallelism": parallelism, "patients": count,
                                           "spark": sc.version})


def start_spark_context(master: str) -> SparkContext:
    """A SparkContext for ``master``; executors run this interpreter (same venv, same trialcds)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    conf = (SparkConf().setMaster(master).setAppName(APP_NAME)
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"]))
    if master.startswith("local") or "127.0.0.1" in master or "localhost" in master:
        # a driver on this machine listens on loopback only
        conf = conf.set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
    for key, value in _extra_conf().items():
        conf = conf.set(key, value)
    sc = SparkContext.getOrCreate(conf)
    sc.setLogLevel("ERROR")
    return sc


def _extra_conf() -> dict[str, str]:
    """``TRIALCDS_SPARK_CONF="spark.executor.memory=2g,spark.cores.max=8"``: settings for a cluster."""
    text = os.environ.get("TRIALCDS_SPARK_CONF", "")
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}
