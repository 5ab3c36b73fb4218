"""The bundled synthetic patients: loading, date rebasing, prefetch and transaction bundles.

Seed patients are written for one anchor as-of date (``seeds/expected.json`` → ``asOf``). Windows
such as "ECOG within 90 days" would make them drift as the calendar moves, so every date in a
seed bundle is shifted by the same number of days before it is used on another as-of date (the
service always decides "as of today"). Relative spacing — all the criteria look at — is kept.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cds_service.criteria.models import TrialDefinition

SEEDS_DIR = Path(__file__).resolve().parents[1] / "seeds"
_DATE = re.compile(r"^(\d{4})(-\d{2})?(-\d{2})?(T.*)?$")


@lru_cache(maxsize=1)
def load_expected() -> dict[str, Any]:
    return json.loads((SEEDS_DIR / "expected.json").read_text(encoding="utf-8"))


def anchor_date() -> date:
    return date.fromisoformat(load_expected()["asOf"])


def seed_bundles() -> dict[str, dict]:
    """slug → the seed patient's Bundle, in file-name order."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((SEEDS_DIR / "patients").glob("*.json"))}


def patient_id(bundle: dict) -> str:
    return next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


# --- rebasing ----------------------------------------------------------------------------------

def rebase_bundle(bundle: dict, anchor: date, target: date) -> dict:
    """A copy of the bundle with every date and dateTime moved by ``target - anchor`` days."""
    shift = (target - anchor).days
    return _shift(copy.deepcopy(bundle), shift) if shift else copy.deepcopy(bundle)


# FHIR date, dateTime and instant elements by name; codes such as RxNorm "4492" look like years.
_DATE_KEYS = frozenset({"date", "start", "end", "authoredOn", "issued", "started", "birthDate", "recordedDate",
                        "dateAsserted", "lastUpdated", "deceasedDateTime"})
_DATE_SUFFIXES = ("DateTime", "Date", "Instant")


def _is_date_key(key: str) -> bool:
    return key in _DATE_KEYS or key.endswith(_DATE_SUFFIXES)


def _shift(node: Any, days: int) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                node[key] = _shift_date(value, days) if _is_date_key(key) else value
            else:
                node[key] = _shift(value, days)
        return node
    if isinstance(node, list):
        return [_shift(item, days) for item in node]
    return node


def _shift_date(text: str, days: int) -> str:
    match = _DATE.match(text)
    if not match:
        return text
    year, month, day_, rest = match.groups()
    try:
        moved = date(int(year), int(month[1:]) if month else 1, int(day_[1:]) if day_ else 1) + timedelta(days=days)
    except ValueError:
        return text
    if not month:
        return f"{moved.year:04d}"
    if not day_:
        return f"{moved.year:04d}-{moved.month:02d}"
    return moved.isoformat() + (rest or "")


# --- what an EHR would send ----------------------------------------------------------------------

def prefetch_from_bundle(bundle: dict, trial: TrialDefinition, keys: set[str] | None = None) -> dict[str, Any]:
    """The prefetch an EHR would send for this patient: each template answered from the bundle."""
    resources = [e["resource"] for e in bundle.get("entry", []) if isinstance(e, dict) and "resource" in e]
    by_ref = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources}
    prefetch: dict[str, Any] = {}
    for key, template in trial.service.prefetch.items():
        if keys is not None and key not in keys:
            continue
        prefetch[key] = answer_template(template, resources, by_ref)
    return prefetch


def answer_template(template: str, resources: list[dict], by_ref: dict[str, dict]) -> Any:
    """A read → the resource (or None); a search → a searchset Bundle with its _include matches."""
    path, _, query = template.partition("?")
    rtype = path.split("/")[0]
    if not query:
        return next((r for r in resources if r.get("resourceType") == rtype), None)
    params = parse_qs(query)
    wanted_codes = {c for value in params.get("code", []) for c in value.split(",")}
    matches = [r for r in resources if r.get("resourceType") == rtype
               and (not wanted_codes or _has_code(r, wanted_codes))]
    included: dict[str, dict] = {}
    for include in params.get("_include", []):
        element = include.split(":")[1] if ":" in include else ""
        for resource in matches:
            for ref in _references(resource, element):
                target = by_ref.get(ref)
                if target is not None:
                    included[ref] = target
    entries = [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
               for r in matches]
    entries += [{"fullUrl": ref, "resource": r, "search": {"mode": "include"}} for ref, r in included.items()]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}


def _has_code(resource: dict, wanted: set[str]) -> bool:
    for coding in (resource.get("code") or {}).get("coding") or []:
        if f"{coding.get('system')}|{coding.get('code')}" in wanted:
            return True
    return False


def _references(resource: dict, element: str) -> list[str]:
    """References held by a search parameter's element (``medication`` → ``medicationReference``)."""
    value = resource.get(element, resource.get(f"{element}Reference"))
    items = value if isinstance(value, list) else [value]
    return [item["reference"] for item in items if isinstance(item, dict) and isinstance(item.get("reference"), str)]


def transaction_from_bundle(bundle: dict) -> tuple[dict, list[str]]:
    """A transaction of idempotent PUTs (client-assigned ids), loadable into any FHIR server.

    Resources that are not valid FHIR R4 (seed p09 carries two on purpose, to test that the
    evaluator skips them) would make a server reject the whole transaction: they are left out
    and returned by reference.
    """
    entries, invalid = [], []
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        ref = f"{resource['resourceType']}/{resource['id']}"
        if not is_valid_r4(resource):
            invalid.append(ref)
            continue
        entries.append({"fullUrl": ref, "resource": resource, "request": {"method": "PUT", "url": ref}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, invalid


def is_valid_r4(resource: dict) -> bool:
    from fhir.resources.R4B import get_fhir_model_class  # heavy import: only the seeding path needs it
    from pydantic import ValidationError

    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except (ValidationError, KeyError, ValueError, TypeError):
        return False
    return True
