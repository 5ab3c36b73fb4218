"""Engines decide WHERE a patient's record is evaluated (this process, worker processes, Spark
executors) — never HOW: every engine calls ``grouping`` and ``evaluate.screen_patient`` /
``evaluate.screen_bundle``.

The contract an engine meets::

    class Engine(Protocol):
        name: str
        def run(self, plan: ScreeningPlan, progress: Progress) -> EngineRun

``run`` writes its results as *shards* under ``plan.workdir``: NDJSON files of ``PatientResult``
lines (``{"key", "evaluation", "name", "mrn"}``, see ``evaluate.py``), each file sorted by ``key``
(``orjson.dumps`` of the dict ``screen_patient`` returned, one per line). ``outputs.py`` merges the
shards in key order, so the outputs do not depend on the engine or on how the work was split.
``EngineRun.issues`` holds what could not be used of the input (merged over all workers).

Engines are found by name in ``ENGINES`` and imported only when chosen (PySpark is an optional extra).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

from cds_service.screening.inputs import BundleSource, NdjsonSource
from cds_service.screening.issues import InputIssues
from cds_service.screening.progress import Progress

ENGINES = {
    "local": "cds_service.screening.engines.local:LocalEngine",
    "spark": "cds_service.screening.engines.spark:SparkEngine",
}


@dataclass(frozen=True)
class ScreeningPlan:
    source: NdjsonSource | BundleSource
    trial_id: str
    as_of: date
    workdir: Path  # scratch space inside --out (owner-only), removed after a successful run
    workers: int
    spark_master: str | None = None


@dataclass
class EngineRun:
    shards: list[Path]
    issues: InputIssues = field(default_factory=InputIssues)
    details: dict = field(default_factory=dict)  # engine facts for summary.json (workers, partitions…)


class Engine(Protocol):
    name: str

    def run(self, plan: ScreeningPlan, progress: Progress) -> EngineRun: ...


def get_engine(name: str) -> Engine:
    module_name, _, class_name = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
