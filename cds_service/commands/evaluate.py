"""``trialcds evaluate --bundle FILE``: one patient's Bundle, decided offline."""

from __future__ import annotations

import argparse
import json
import os
from datetime import date
from pathlib import Path

from cds_service.asof import TIMEZONE_SETTING, site_today
from cds_service.cli import UsageError
from cds_service.criteria import Evaluation, evaluate_resources
from cds_service.trials import get_trial
from fhir_mappings import resources_of_bundle

STATUS_MARK = {"pass": "PASS", "fail": "FAIL", "unknown": "  ? "}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate one patient held in a FHIR Bundle")
    p.add_argument("--bundle", required=True, type=Path, help="a FHIR R4 Bundle (collection, transaction, searchset)")
    p.add_argument("--as-of", type=parse_as_of, default=None, help="YYYY-MM-DD (default: today in TRIALCDS_TIMEZONE, else UTC)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--trial", default="NCT05271110", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def parse_as_of(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def load_bundle(path: Path) -> tuple[list, str]:
    """The Bundle's entries and its one Patient's id; anything else is a UsageError."""
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not JSON ({exc.__class__.__name__})") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise UsageError(f"{path}: not a FHIR Bundle")
    if not isinstance(bundle.get("entry", []), list):
        raise UsageError(f"{path}: Bundle.entry is not a list")
    entries = list(resources_of_bundle(bundle))
    patients = [r for r, _ in entries if isinstance(r, dict) and r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise UsageError(f"{path}: the Bundle holds {len(patients)} Patients (exactly one expected)")
    return entries, str(patients[0].get("id") or "")


def run(args: argparse.Namespace) -> int:
    entries, patient_id = load_bundle(args.bundle)
    try:
        as_of = args.as_of or site_today(os.environ.get(TIMEZONE_SETTING))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    evaluation = evaluate_resources(get_trial(args.trial), entries, as_of, patient_id=patient_id or None)
    if args.format == "json":
        print(json.dumps(evaluation.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(evaluation))
    return 0


def render_text(evaluation: Evaluation) -> str:
    width = max(len(c.id) for c in evaluation.criteria)
    lines = [f"{evaluation.trial} — {evaluation.patient} — as of {evaluation.asOf}",
             f"Verdict: {evaluation.verdict}", ""]
    for c in evaluation.criteria:
        mode = "" if c.automated else " (review)"
        lines.append(f"  {STATUS_MARK[c.status]}  {c.id:<{width}}  {c.reason}{mode}")
    facts = {k: v for k, v in evaluation.facts.items() if v}
    if facts:
        lines += ["", "Facts:"] + [f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in facts.items()]
    if evaluation.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in evaluation.notes]
    return "\n".join(lines)
