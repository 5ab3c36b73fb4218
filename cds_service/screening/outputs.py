"""The four outputs of a screening run, from the engine's shards, in one streaming pass.

- ``evaluations.ndjson``: every evaluation object, by patient id.
- ``candidates.csv``: the worklist — likely-eligible first, then needs-review with the fewest open
  items first, then by patient id.
- ``summary.json``: counts, the screening funnel, exclusion reasons, input issues, timings, versions.
- ``report.html``: ``report.py``.

Everything but the ``timings`` member of summary.json is a function of the input, so a re-run gives
the same bytes. The files hold patient data: the folder is created 0700 and every file 0600.
"""

from __future__ import annotations

import csv
import heapq
import io
import os
import platform
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cds_service.criteria.models import TrialDefinition

CANDIDATE_VERDICTS = ("likely-eligible", "needs-review")
VERDICTS = ("likely-eligible", "needs-review", "not-eligible")
CSV_COLUMNS = ("rank", "patient", "name", "mrn", "verdict", "new", "open_items", "what_to_check",
               "ecog", "liver_lesions", "ca19_9", "chemotherapy", "last_staging_imaging")


# --- owner-only files -----------------------------------------------------------------------------

def make_private_dir(path: Path) -> None:
    """Create the folder owner-only (0700); an existing folder's mode is left as the user set it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by the owner only (0600), also when it existed with a wider mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)


def open_private(path: Path) -> io.BufferedWriter:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return open(fd, "wb", buffering=1024 * 1024)


# --- merging the shards -----------------------------------------------------------------------------

def _shard_results(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            yield orjson.loads(line)


def merge_shards(shards: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every PatientResult of the (each key-sorted) shards, in key order."""
    return heapq.merge(*(_shard_results(p) for p in sorted(shards)), key=lambda r: r["key"])


# --- the tally: what summary.json and the report count ----------------------------------------------

@dataclass
class Tally:
    trial: TrialDefinition
    previous: set[str] | None = None  # patient references listed by --previous
    verdicts: Counter = field(default_factory=Counter)
    reached: Counter = field(default_factory=Counter)  # funnel step id → patients still in
    failed: Counter = field(default_factory=Counter)  # criterion id → not-eligible patients failing it
    candidates: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    _last_key: str | None = None

    @property
    def funnel_criteria(self) -> list[str]:
        """The automated criteria in the trial's order: the CONSORT-style steps of the funnel."""
        return [c.id for c in self.trial.criteria if c.automated]

    def add(self, result: dict[str, Any]) -> bool:
        """Count one result; False for a repeat of the previous key (the same patient twice)."""
        if result["key"] == self._last_key:
            self.duplicates += 1
            return False
        self._last_key = result["key"]
        evaluation = result["evaluation"]
        self.verdicts[evaluation["verdict"]] += 1
        status = {c["id"]: c["status"] for c in evaluation["criteria"]}
        for cid in self.funnel_criteria:
            if status.get(cid) == "fail":
                break
            self.reached[cid] += 1
        if evaluation["verdict"] == "not-eligible":
            self.failed.update(cid for cid, s in status.items() if s == "fail")
        else:
            self.candidates.append(self._candidate(result))
        return True

    def _candidate(self, result: dict[str, Any]) -> dict[str, Any]:
        evaluation = result["evaluation"]
        open_items = [c for c in evaluation["criteria"] if c["automated"] and c["status"] == "unknown"]
        ref = evaluation.get("patient") or f"Patient/{result['key']}"
        return {"key": result["key"], "patient": ref, "name": result.get("name"), "mrn": result.get("mrn"),
                "verdict": evaluation["verdict"], "openItems": len(open_items),
                "new": None if self.previous is None else ref not in self.previous,
                "evaluation": evaluation}

    def worklist(self) -> list[dict[str, Any]]:
        order = {v: i for i, v in enumerate(CANDIDATE_VERDICTS)}
        return sorted(self.candidates, key=lambda c: (order[c["verdict"]], c["openItems"], c["key"]))

    @property
    def screened(self) -> int:
        return sum(self.verdicts.values())

    def funnel(self) -> list[dict[str, Any]]:
        labels = {c.id: c.label for c in self.trial.criteria}
        steps = [{"step": "screened", "label": "Patients screened", "patients": self.screened}]
        steps += [{"step": cid, "label": labels[cid], "patients": self.reached[cid]} for cid in self.funnel_criteria]
        steps.append({"step": "candidates", "label": "Candidates (likely eligible or needs review)",
                      "patients": sum(self.verdicts[v] for v in CANDIDATE_VERDICTS)})
        return steps

    def exclusions(self) -> list[dict[str, Any]]:
        order = {c.id: i for i, c in enumerate(self.trial.criteria)}
        labels = {c.id: c.label for c in self.trial.criteria}
        return [{"criterion": cid, "label": labels.get(cid, cid), "patients": n}
                for cid, n in sorted(self.failed.items(), key=lambda kv: (-kv[1], order.get(kv[0], 0)))]


# --- candidates.csv ----------------------------------------------------------------------------------

def key_facts(evaluation: dict[str, Any], trial: TrialDefinition) -> dict[str, str]:
    """The worklist's fact columns, as short plain text."""
    facts = evaluation.get("facts") or {}
    by_rule = {c.rule: c.id for c in trial.criteria}
    ecog_id = by_rule.get("performance_status")
    ecog = next((c["reason"] for c in evaluation["criteria"] if c["id"] == ecog_id), "")
    return {"ecog": ecog, "liver_lesions": _lesions(facts.get("liverLesions")), "ca19_9": _ca19_9(facts.get("ca19_9")),
            "chemotherapy": _chemotherapy(facts.get("chemotherapy")),
            "last_staging_imaging": _imaging(facts.get("stagingImaging"))}


def _lesions(f: dict | None) -> str:
    if not f:
        return ""
    sizes = ", ".join(f"{d:g}" for d in f.get("diametersMm") or ())
    return f"{f.get('count')} lesion(s) on {f.get('assessed')}" + (f": {sizes} mm" if sizes else "")


def _ca19_9(f: dict | None) -> str:
    if not f:
        return ""
    latest, baseline = f["latest"], f.get("baseline")
    text = f"{latest['value']:g} U/mL on {latest['date']}"
    if baseline:
        change = f.get("changePercent")
        text += f" (baseline {baseline['value']:g} on {baseline['date']}" + (f", {change:+g} %)" if change is not None else ")")
    return text


def _chemotherapy(f: dict | None) -> str:
    if not f:
        return ""
    return f"{f.get('regimen') or ' + '.join(f.get('drugs') or ())} since {f.get('start') or 'unknown date'}"


def _imaging(f: dict | None) -> str:
    return f"{'/'.join(f.get('modalities') or ())} {f.get('date')}" if f else ""


def what_to_check(evaluation: dict[str, Any]) -> str:
    """Every criterion left unknown, with its reason: automated ones first (they decide the verdict)."""
    unknown = [c for c in evaluation["criteria"] if c["status"] == "unknown"]
    unknown.sort(key=lambda c: not c["automated"])
    return "; ".join(f"{c['label']}: {c['reason']}" for c in unknown)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A cell a spreadsheet would run as a formula (``=HYPERLINK(…)`` in a name field) is quoted
    with a leading apostrophe (OWASP's advice for CSV injection); numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def candidates_csv(worklist: list[dict[str, Any]], trial: TrialDefinition) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rank, c in enumerate(worklist, start=1):
        row = {"rank": rank, "patient": c["patient"], "name": c["name"] or "", "mrn": c["mrn"] or "",
               "verdict": c["verdict"], "new": "new" if c["new"] else "", "open_items": c["openItems"],
               "what_to_check": what_to_check(c["evaluation"]), **key_facts(c["evaluation"], trial)}
        writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
    return out.getvalue().encode("utf-8")


def read_previous(folder: Path) -> set[str]:
    """The patient references a previous run's candidates.csv listed."""
    path = folder / "candidates.csv"
    with open(path, encoding="utf-8", newline="") as f:
        return {row["patient"] for row in csv.DictReader(f) if row.get("patient")}


# --- summary.json ----------------------------------------------------------------------------------

def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("trialcds")
    except PackageNotFoundError:
        ours = "unknown"
    return {"trialcds": ours, "python": platform.python_version()}


def summary_json(tally: Tally, *, as_of: str, source: dict[str, Any], engine: dict[str, Any],
                 issues: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    worklist_new = [c for c in tally.candidates if c["new"]]
    return {
        "trial": {"id": tally.trial.id, "title": tally.trial.title},
        "asOf": as_of,
        "source": source,
        "engine": engine,
        "counts": {"screened": tally.screened, **{v: tally.verdicts[v] for v in VERDICTS},
                   "candidates": len(tally.candidates),
                   "newCandidates": None if tally.previous is None else len(worklist_new)},
        "funnel": tally.funnel(),
        "exclusionReasons": tally.exclusions(),
        "input": {**issues, "duplicatePatients": tally.duplicates},
        "versions": versions(),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


# --- the whole step ----------------------------------------------------------------------------------

def write_run_outputs(out: Path, trial: TrialDefinition, as_of: Any, engine_run: Any, previous: set[str] | None,
                      source: dict[str, Any], engine: dict[str, Any], timings: dict[str, float], started: float,
                      progress: Any) -> Tally:
    """evaluations.ndjson while merging the shards, then candidates.csv, summary.json and report.html."""
    import time

    from cds_service.screening.report import render_report

    phase_start = time.monotonic()
    tally = Tally(trial, previous)
    phase = progress.phase("writing outputs", unit="patients")
    with open_private(out / "evaluations.ndjson") as f:
        for result in merge_shards(engine_run.shards):
            if tally.add(result):
                f.write(orjson.dumps(result["evaluation"]) + b"\n")
                phase.advance()
    worklist = tally.worklist()
    write_private(out / "candidates.csv", candidates_csv(worklist, trial))
    timings["outputs"] = time.monotonic() - phase_start
    timings["total"] = time.monotonic() - started
    summary = summary_json(tally, as_of=as_of.isoformat(), source=source, engine=engine,
                           issues=engine_run.issues.to_json(), timings=timings)
    write_private(out / "summary.json", dumps(summary))
    write_private(out / "report.html", render_report(summary, worklist, trial).encode("utf-8"))
    phase.done()
    return tally
