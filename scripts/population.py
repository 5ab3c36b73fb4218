#!/usr/bin/env python3
"""A realistic screening population, as Bulk Data NDJSON, for the tests and ``make bench-screen``.

Three sources, mixed:

- **background**: Synthea patients (``scripts/synthea.py``, H3's harness: an independent generator,
  cached in ``.cache/synthea/``), kept to the resource types the trial reads — what a Bulk export
  with the trial's ``_type`` would carry — and to the last ``HISTORY_YEARS`` years of dated records
  (Synthea writes decades of yearly vitals per patient; a hospital export for screening is usually
  limited the same way with ``_since``).
- **PDAC patients**: the 36 seed patients (``seeds/patients``), moved to the population's as-of date
  and re-identified.
- **replicas**: to reach 1 000 … 100 000 patients, each template patient is written again with new
  ids (every resource id and every reference to it gets a suffix ``-rNNNNNN``), same shapes. The
  template lines are prepared once with a placeholder, so a replica costs one ``bytes.replace`` per
  line: 100 000 patients are written in about the time it takes to copy the bytes.

Every ``PDAC_EVERY``-th patient is a seed replica (2 %), the others Synthea replicas.

Library use::

    from scripts.population import build, reidentify_bundle
    folder = build(10_000)            # .cache/population/<...>-10000/ndjson/*.ndjson, cached
    manifest = json.loads((folder.parent / "population.json").read_text())  # asOf, counts, sizes

Command line: ``scripts/population.py 10000 [--no-synthea]`` prints the folder.
Nothing generated is committed (``.cache/`` is ignored).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cds_service.screening.reads import TrialReads  # noqa: E402
from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles  # noqa: E402
from cds_service.trials import get_trial  # noqa: E402

CACHE_ROOT = ROOT / ".cache" / "population"
PLACEHOLDER = "§R§".encode()  # "§R§": orjson writes it as these UTF-8 bytes; no FHIR id holds a §
PDAC_EVERY = 50
HISTORY_YEARS = 2
SYNTHEA = {"population": 40, "seed": 7, "min_age": 50, "max_age": 90}  # shared with H3's tests (cache)
VERSION = 3  # bump when the shape of the output changes (a new cache folder)


# --- re-identification ---------------------------------------------------------------------------

def _reidentify(node: Any, ids: set[str], mark: str) -> Any:
    """References to any of ``ids`` ("Type/id", absolute URLs too) get ``mark`` appended to the id."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out[key] = _mark_reference(value, ids, mark)
            elif key == "fullUrl" and isinstance(value, str):
                out[key] = _mark_reference(value, ids, mark)
            else:
                out[key] = _reidentify(value, ids, mark)
        return out
    if isinstance(node, list):
        return [_reidentify(v, ids, mark) for v in node]
    return node


def _mark_reference(value: str, ids: set[str], mark: str) -> str:
    if value.startswith("urn:uuid:"):
        rid = value[len("urn:uuid:"):]
        return value + mark if rid in ids else value
    parts = value.split("/")
    for i in range(len(parts) - 1):
        if parts[i] and parts[i][0].isupper() and parts[i + 1] in ids:
            parts[i + 1] += mark
            return "/".join(parts)
    return value


def template_lines(resources: list[dict], mark: str = PLACEHOLDER.decode("utf-8")) -> list[tuple[str, bytes]]:
    """One patient's resources as (type, NDJSON line) with every id and reference to it marked."""
    ids = {r["id"] for r in resources if isinstance(r.get("id"), str)}
    lines = []
    for resource in resources:
        copy = _reidentify(resource, ids, mark)
        if isinstance(copy.get("id"), str):
            copy["id"] += mark
        lines.append((copy["resourceType"], orjson.dumps(copy)))
    return lines


def reidentify_bundle(bundle: dict, suffix: str) -> dict:
    """A copy of a one-patient Bundle whose resource ids (and references to them) end in ``suffix``."""
    resources = [e["resource"] for e in bundle.get("entry", []) if isinstance(e, dict) and "resource" in e]
    ids = {r["id"] for r in resources if isinstance(r.get("id"), str)}
    entries = []
    for entry in bundle.get("entry", []):
        entry = _reidentify(entry, ids, suffix)
        resource = entry.get("resource")
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            resource["id"] += suffix
        if isinstance(entry.get("request"), dict) and isinstance(entry["request"].get("url"), str):
            entry["request"]["url"] = _mark_reference(entry["request"]["url"], ids, suffix)
        entries.append(entry)
    return {**bundle, "entry": entries}


# --- templates -----------------------------------------------------------------------------------

def seed_templates(as_of: date) -> list[list[tuple[str, bytes]]]:
    templates = []
    for bundle in seed_bundles().values():
        moved = rebase_bundle(bundle, anchor_date(), as_of)
        templates.append(template_lines([e["resource"] for e in moved["entry"]]))
    return templates


def _patient_of(resource: dict) -> str | None:
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for element in ("subject", "patient"):
        ref = (resource.get(element) or {}).get("reference") if isinstance(resource.get(element), dict) else None
        if isinstance(ref, str):
            return ref.rsplit("/", 1)[-1].removeprefix("urn:uuid:")
    return None


_DATE_ELEMENTS = ("abatementDateTime", "effectiveDateTime", "onsetDateTime", "recordedDate", "authoredOn", "performedDateTime",
                  "started", "effectivePeriod", "performedPeriod", "issued")


def _recent(resource: dict, since: str) -> bool:
    """Keep Patients, Conditions not yet resolved (a diagnosis is for life) and anything dated since
    ``since``."""
    rtype = resource.get("resourceType")
    if rtype in ("Patient", "Medication"):
        return True
    if rtype == "Condition" and not any(k.startswith("abatement") for k in resource):
        return True
    for element in _DATE_ELEMENTS:
        value = resource.get(element)
        if isinstance(value, dict):
            value = value.get("start") or value.get("end")
        if isinstance(value, str):
            return value[:10] >= since
    return True


def synthea_templates(reads: TrialReads) -> tuple[list[list[tuple[str, bytes]]], date]:
    """Synthea patients (H3's harness) as templates, and Synthea's reference date."""
    from scripts.synthea import generate, load_manifest, ndjson_files

    folder = generate(SYNTHEA["population"], SYNTHEA["seed"], min_age=SYNTHEA["min_age"], max_age=SYNTHEA["max_age"])
    as_of = date.fromisoformat(load_manifest(folder)["reference_date"])
    since = (as_of - timedelta(days=365 * HISTORY_YEARS)).isoformat()
    by_patient: dict[str, list[dict]] = {}
    medications: dict[str, dict] = {}
    for path in ndjson_files(folder):
        with open(path, "rb") as f:
            for line in f:
                resource = orjson.loads(line)
                if not reads.wants(resource):
                    continue
                if resource["resourceType"] == "Medication":
                    medications[resource["id"]] = resource
                    continue
                patient = _patient_of(resource)
                if patient and _recent(resource, since):
                    by_patient.setdefault(patient, []).append(resource)
    templates = []
    for patient in sorted(by_patient):
        resources = by_patient[patient]
        if not any(r["resourceType"] == "Patient" for r in resources):
            continue
        # the Medications this patient's resources point at travel with it (and are re-identified)
        pointed = sorted({ref.rsplit("/", 1)[-1] for r in resources
                          for ref in [((r.get("medicationReference") or {}).get("reference"))] if isinstance(ref, str)})
        resources = resources + [medications[m] for m in pointed if m in medications]
        templates.append(template_lines(resources))
    return templates, as_of


# --- the population ------------------------------------------------------------------------------

def build(patients: int, *, synthea: bool = True, cache_root: Path = CACHE_ROOT) -> Path:
    """The NDJSON folder of a population of ``patients`` (cached; safe to call concurrently)."""
    name = f"v{VERSION}-{'synthea' if synthea else 'seeds'}-{patients}"
    target = cache_root / name
    folder = target / "ndjson"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "population.json").is_file():
            return folder
        shutil.rmtree(target, ignore_errors=True)
        work = cache_root / f"{name}.work"
        shutil.rmtree(work, ignore_errors=True)
        started = time.monotonic()
        trial = get_trial("NCT05271110")
        reads = TrialReads.from_trial(trial)
        if synthea:
            background, as_of = synthea_templates(reads)
        else:
            as_of = anchor_date()
            background = []
        pdac = seed_templates(as_of)
        counts = write_population(work / "ndjson", patients, pdac, background)
        manifest = {"patients": patients, "asOf": as_of.isoformat(), "synthea": SYNTHEA if synthea else None,
                    "historyYears": HISTORY_YEARS, "pdacEvery": PDAC_EVERY, "templates":
                    {"pdac": len(pdac), "background": len(background)}, "resources": counts,
                    "bytes": sum(p.stat().st_size for p in (work / "ndjson").iterdir()),
                    "seconds": round(time.monotonic() - started, 1)}
        (work / "population.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(work, target)
        return folder


def population_plan(patients: int, pdac: int, background: int) -> Iterator[tuple[str, int, int]]:
    """(kind, template index, replica number) for each patient, in order."""
    for n in range(patients):
        if background == 0 or n % PDAC_EVERY == 0:
            yield "pdac", n % pdac, n
        else:
            yield "background", n % background, n


def write_population(folder: Path, patients: int, pdac: list, background: list) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    counts: dict[str, int] = {}
    try:
        for kind, index, number in population_plan(patients, len(pdac), len(background)):
            template = pdac[index] if kind == "pdac" else background[index]
            suffix = f"-r{number:06d}".encode()
            for rtype, line in template:
                f = files.get(rtype)
                if f is None:
                    f = files[rtype] = open(folder / f"{rtype}.ndjson", "wb", buffering=1 << 20)
                f.write(line.replace(PLACEHOLDER, suffix) + b"\n")
                counts[rtype] = counts.get(rtype, 0) + 1
    finally:
        for f in files.values():
            f.close()
    return dict(sorted(counts.items()))


def manifest_of(folder: Path) -> dict:
    return json.loads((folder.parent / "population.json").read_text(encoding="utf-8"))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("patients", type=int)
    parser.add_argument("--no-synthea", action="store_true", help="seed patients only (no Java needed)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    folder = build(args.patients, synthea=not args.no_synthea)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
