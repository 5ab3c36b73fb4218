"""Every decision, note and card on a fixed set of records, as one JSON file: a speed change must not move any.

    .venv/bin/python bench/decisions.py --out var/bench/decisions-before.json [--synthea 40]
    .venv/bin/python bench/decisions.py --out var/bench/decisions-after.json --compare var/bench/decisions-before.json

For each record: the evaluation exactly as ``trialcds evaluate --format json`` prints it, and the
card ``card_for`` builds from it (with counted uuids and a fixed clock, so two runs compare byte for
byte). Records: every seed patient at the seeds' anchor date; each seed with its entries reversed
(order must not matter); each seed grown to ~1 000 resources as bench/growth.py grows it; and up to
``--synthea`` patients of the cached Synthea population (.cache/synthea/*/fhir, if present).
``--compare`` prints the records whose output differs and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def records(synthea: int) -> list[tuple[str, list, str | None, date]]:
    import random

    from bench.growth import synthesise
    from cds_service.seeding import anchor_date, patient_id, seed_bundles
    from fhir_mappings import resources_of_bundle

    as_of = anchor_date()
    out = []
    for slug, bundle in seed_bundles().items():
        entries = list(resources_of_bundle(bundle))
        pid = patient_id(bundle)
        out.append((slug, entries, pid, as_of))
        out.append((f"{slug}/reversed", entries[::-1], pid, as_of))
        if any(r.get("resourceType") == "Patient" for r, _ in entries if isinstance(r, dict)):
            grown = synthesise(bundle, 1000, random.Random(20251124))
            out.append((f"{slug}/grown", grown, pid, as_of))
    files = sorted(ROOT.glob(".cache/synthea/*/fhir/*.json"))
    for path in [p for p in files if not p.name.startswith(("hospital", "practitioner"))][:synthea]:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        entries = list(resources_of_bundle(bundle))
        ids = [r.get("id") for r, _ in entries if isinstance(r, dict) and r.get("resourceType") == "Patient"]
        out.append((f"synthea/{path.stem}", entries, ids[0] if ids else None, date(2026, 11, 30)))
    return out


def decisions(synthea: int) -> dict[str, Any]:
    from cds_service.cards import card_for
    from cds_service.criteria import evaluate_resources
    from cds_service.trials import get_trial

    trial = get_trial()
    now = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    out: dict[str, Any] = {}
    for name, entries, pid, as_of in records(synthea):
        evaluation = evaluate_resources(trial, entries, as_of, patient_id=pid)
        counter = iter(range(1_000_000))
        card = card_for(evaluation, trial, pid or "unknown", now, new_uuid=lambda: f"uuid-{next(counter)}")
        out[name] = {
            "evaluate": json.dumps(evaluation.to_json(), indent=2, ensure_ascii=False),
            "card": json.dumps(card.to_json() if card is not None else None, sort_keys=True, ensure_ascii=False),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--compare", type=Path, default=None)
    parser.add_argument("--synthea", type=int, default=40, help="how many cached Synthea patients (0: none)")
    args = parser.parse_args(argv)
    result = decisions(args.synthea)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"{len(result)} records → {args.out}")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    differ = [name for name in sorted(set(before) | set(result)) if before.get(name) != result.get(name)]
    for name in differ:
        print(f"DIFFERS: {name}")
    print(f"{len(differ)} of {len(result)} records differ from {args.compare}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
