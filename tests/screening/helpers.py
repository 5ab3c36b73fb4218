"""Test populations for ``trialcds screen``: the seed patients (the PDAC patients) written as Bulk
Data NDJSON or as a Bundles folder, plus synthetic background patients; and a way to run the command."""

from __future__ import annotations

import copy
import gzip
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from cds_service.cli import main


def resources(bundles: Iterable[dict]) -> list[dict]:
    return [e["resource"] for b in bundles for e in b["entry"]]


def write_ndjson(folder: Path, items: Iterable[dict], *, files_per_type: int = 1, gzip_types: set[str] = frozenset()) -> Path:
    """Resources as Bulk Data output: ``Type.ndjson`` or ``Type_1.ndjson``… (round-robin), gzip when asked."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in items:
        by_type[r["resourceType"]].append(r)
    for rtype, rs in by_type.items():
        for n in range(files_per_type):
            name = f"{rtype}.ndjson" if files_per_type == 1 else f"{rtype}_{n + 1}.ndjson"
            data = b"".join(orjson.dumps(r) + b"\n" for r in rs[n::files_per_type])
            if rtype in gzip_types:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


def write_bundles(folder: Path, bundles: dict[str, dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for slug, bundle in bundles.items():
        (folder / f"{slug}.json").write_text(json.dumps(bundle), encoding="utf-8")
    return folder


def screen(*args: Any) -> int:
    """``trialcds screen ARGS`` in this process; its exit code."""
    return main(["screen", *[str(a) for a in args]])


def evaluations(out: Path) -> dict[str, dict]:
    lines = (out / "evaluations.ndjson").read_bytes().splitlines()
    return {e["patient"]: e for e in map(orjson.loads, lines)}


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def with_new_ids(bundle: dict, suffix: str) -> dict:
    """A copy of a seed patient under new resource ids (every id and reference renamed)."""
    text = json.dumps(bundle)
    for e in bundle["entry"]:
        r = e["resource"]
        old = f'{r["resourceType"]}/{r["id"]}'
        text = text.replace(f'"{old}"', f'"{old}-{suffix}"').replace(f'"id": "{r["id"]}"', f'"id": "{r["id"]}-{suffix}"')
    return json.loads(text)


def background_patient(n: int) -> list[dict]:
    """A patient without cancer: Patient, two Conditions, an Observation the trial does not read, a drug."""
    pid = f"bg-{n:06d}"
    subject = {"reference": f"Patient/{pid}"}
    return [
        {"resourceType": "Patient", "id": pid, "gender": "female" if n % 2 else "male", "birthDate": f"{1940 + n % 60}-0{1 + n % 9}-1{n % 10}",
         "name": [{"family": f"Background{n}", "given": ["Test"]}]},
        {"resourceType": "Condition", "id": f"{pid}-c1", "subject": subject, "clinicalStatus": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
         "onsetDateTime": "2015-03-01"},
        {"resourceType": "Condition", "id": f"{pid}-c2", "subject": subject,
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes type 2"}]},
         "onsetDateTime": "2018-06-01"},
        {"resourceType": "Observation", "id": f"{pid}-o1", "status": "final", "subject": subject,
         "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
         "effectiveDateTime": "2026-10-01", "valueQuantity": {"value": 60 + n % 30, "unit": "/min"}},
        {"resourceType": "MedicationRequest", "id": f"{pid}-m1", "status": "active", "intent": "order",
         "subject": subject, "medicationReference": {"reference": "Medication/metformin"},
         "authoredOn": "2026-01-01"},
    ]


METFORMIN = {"resourceType": "Medication", "id": "metformin",
             "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809", "display": "metformin"}]}}


def renamed(resource: dict, **changes: Any) -> dict:
    r = copy.deepcopy(resource)
    r.update(changes)
    return r
