"""The bundled seed patients give exactly the verdicts and statuses recorded in ``seeds/expected.json``,
at the anchor as-of date and — with every date rebased — today and 400 days from today."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from cds_service.seeding import SEEDS_DIR, anchor_date, load_expected, patient_id, rebase_bundle
from fhir_mappings import resources_of_bundle

from .builders import CRITERIA_IDS, evaluate

EXPECTED = SEEDS_DIR / "expected.json"
SLUGS = sorted(p.stem for p in (SEEDS_DIR / "patients").glob("*.json"))
MIN_SEED_PATIENTS = 20


def _expected() -> dict:
    if not EXPECTED.is_file():
        pytest.skip("seeds/expected.json does not exist yet")
    return load_expected()


def _bundle(slug: str) -> dict:
    return json.loads((SEEDS_DIR / "patients" / f"{slug}.json").read_text(encoding="utf-8"))


def _evaluate(bundle: dict, as_of: date):
    return evaluate(list(resources_of_bundle(bundle)), as_of=as_of, patient_id=patient_id(bundle))


def _mismatches(evaluation, recorded: dict) -> list[str]:
    got = {c.id: c.status for c in evaluation.criteria}
    wrong = [f"{cid}: expected {want}, got {got.get(cid)} ({_reason(evaluation, cid)})"
             for cid, want in recorded["criteria"].items() if got.get(cid) != want]
    if evaluation.verdict != recorded["verdict"]:
        wrong.insert(0, f"verdict: expected {recorded['verdict']}, got {evaluation.verdict}")
    return wrong


def _reason(evaluation, cid: str) -> str:
    return next((c.reason for c in evaluation.criteria if c.id == cid), "no such criterion")


def test_the_expected_results_cover_every_seed_patient():
    expected = _expected()
    assert len(SLUGS) >= MIN_SEED_PATIENTS, f"only {len(SLUGS)} seed patients"
    assert sorted(expected["patients"]) == SLUGS
    for slug, recorded in expected["patients"].items():
        assert recorded["verdict"] in {"likely-eligible", "needs-review", "not-eligible"}, slug
        assert set(recorded["criteria"]) <= set(CRITERIA_IDS), slug
        assert set(recorded["criteria"].values()) <= {"pass", "fail", "unknown"}, slug


def test_the_seed_patients_cover_every_verdict():
    verdicts = {recorded["verdict"] for recorded in _expected()["patients"].values()}
    assert verdicts == {"likely-eligible", "needs-review", "not-eligible"}


@pytest.mark.parametrize("slug", SLUGS)
def test_seed_patient_at_the_anchor_date(slug):
    expected = _expected()
    assert slug in expected["patients"], f"{slug} has no entry in seeds/expected.json"
    evaluation = _evaluate(_bundle(slug), anchor_date())
    assert _mismatches(evaluation, expected["patients"][slug]) == []


@pytest.mark.parametrize("days_from_today", [0, 400], ids=["today", "today+400"])
@pytest.mark.parametrize("slug", SLUGS)
def test_seed_patient_rebased(slug, days_from_today):
    expected = _expected()
    assert slug in expected["patients"], f"{slug} has no entry in seeds/expected.json"
    anchor = anchor_date()
    target = datetime.now(timezone.utc).date() + timedelta(days=days_from_today)
    evaluation = _evaluate(rebase_bundle(_bundle(slug), anchor, target), target)
    assert evaluation.asOf == target.isoformat()
    assert _mismatches(evaluation, expected["patients"][slug]) == []
