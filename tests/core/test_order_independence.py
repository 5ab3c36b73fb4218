"""The order in which a sender lists a patient's resources never changes the evaluation object.

A Bulk Data export, a paged FHIR search and a hand-made Bundle list the same resources in different
orders; population screening, ``trialcds evaluate`` and the hook must still give the same object —
statuses, reasons, evidence, facts and notes alike."""

from __future__ import annotations

import json
import random

import pytest

from cds_service.seeding import SEEDS_DIR, anchor_date, patient_id
from fhir_mappings import resources_of_bundle

from .builders import evaluate

SLUGS = sorted(p.stem for p in (SEEDS_DIR / "patients").glob("*.json"))


def _object(resources: list, bundle: dict) -> dict:
    return evaluate(resources, as_of=anchor_date(), patient_id=patient_id(bundle)).model_dump()


@pytest.mark.parametrize("slug", SLUGS)
def test_shuffled_and_reversed_records_give_the_same_evaluation(slug: str) -> None:
    bundle = json.loads((SEEDS_DIR / "patients" / f"{slug}.json").read_text(encoding="utf-8"))
    resources = list(resources_of_bundle(bundle))
    as_sent = _object(resources, bundle)
    assert _object(list(reversed(resources)), bundle) == as_sent
    for seed in range(3):
        shuffled = resources[:]
        random.Random(seed).shuffle(shuffled)
        assert _object(shuffled, bundle) == as_sent, f"shuffle {seed} changed the evaluation"
