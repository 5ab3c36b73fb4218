"""The pure parts: cards from evaluations, and the CDS Hooks message models."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from cds_service.cards import card_for, summary
from cds_service.presentation.escape import escape
from cds_service.criteria import evaluate_resources
from cds_service.protocol import Card, Feedback, HookRequest, ServiceDescription, Source
from cds_service.seeding import patient_id
from fhir_mappings import resources_of_bundle

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)


def evaluate(bundle, trial):
    return evaluate_resources(trial, list(resources_of_bundle(bundle)), NOW.date(), patient_id=patient_id(bundle))


@pytest.fixture(scope="module")
def anchored(trial):
    """Seed bundles at their own anchor date (no HTTP here, so no rebasing to today needed)."""
    from cds_service.seeding import seed_bundles

    return seed_bundles()


def test_not_eligible_gets_no_card(anchored, trial, expected):
    slug = next(s for s, p in expected.items() if p["verdict"] == "not-eligible")
    evaluation = evaluate(anchored[slug], trial)
    assert evaluation.verdict == "not-eligible"
    assert card_for(evaluation, trial, patient_id(anchored[slug]), NOW) is None


def test_card_is_deterministic_given_uuids_and_time(anchored, trial):
    bundle = anchored["p01-eligible-gem-nabpac"]
    counter = iter(range(100))
    card = card_for(evaluate(bundle, trial), trial, patient_id(bundle), NOW, new_uuid=lambda: f"u{next(counter)}")
    assert card is not None
    assert card.uuid == "u0" and [s.uuid for s in card.suggestions] == ["u1", "u2"]
    referral = card.suggestions[0].actions[0].resource
    assert referral["authoredOn"] == "2026-11-24T09:30:00+00:00"


def test_summaries_of_every_seed_stay_under_140(anchored, trial, expected):
    for slug, bundle in anchored.items():
        evaluation = evaluate(bundle, trial)
        assert evaluation.verdict == expected[slug]["verdict"], slug
        assert len(summary(evaluation, trial)) < 140


def test_record_text_loses_pipes_and_newlines():
    assert escape("a|b\nc") == "a\\|b c"


def test_card_model_refuses_long_summary_and_missing_selection_behavior():
    source = Source(label="x")
    with pytest.raises(ValidationError):
        Card(summary="x" * 140, indicator="info", source=source)
    with pytest.raises(ValidationError):
        Card(summary="ok", indicator="info", source=source, suggestions=[{"label": "s"}])
    with pytest.raises(ValidationError):
        Card(summary="ok", indicator="info", source=source, overrideReasons=[{"system": "s", "code": "c"}])


def test_optional_fields_are_omitted_never_null():
    card = Card(summary="ok", indicator="info", source=Source(label="x"))
    assert card.to_json() == {"summary": "ok", "indicator": "info", "source": {"label": "x"}}
    with pytest.raises(ValidationError):
        ServiceDescription(hook="patient-view", description="d", id="x", title="")


def test_request_ignores_unknown_fields_and_hides_the_token():
    request = HookRequest.model_validate({
        "hook": "patient-view", "hookInstance": "h", "future": {"x": 1},
        "fhirServer": "https://ehr.example/fhir",
        "fhirAuthorization": {"access_token": "tok-123", "token_type": "Bearer", "expires_in": 300,
                              "scope": "user/*.read", "subject": "svc", "unknown": True},
        "context": {"patientId": "p1", "userId": "Practitioner/1", "medications": {"x": 1}}})
    assert request.access_token == "tok-123"
    assert "tok-123" not in repr(request) and "tok-123" not in str(request.to_json())
    assert "future" not in request.to_json()
    assert request.context.model_dump()["medications"] == {"x": 1}  # hook-specific context is kept


@pytest.mark.parametrize("server", ["ftp://ehr/fhir", "ehr.example/fhir", "https://"])
def test_fhir_server_must_be_an_http_url(server):
    with pytest.raises(ValidationError):
        HookRequest.model_validate({"hook": "patient-view", "hookInstance": "h", "fhirServer": server,
                                    "context": {"patientId": "p1"}})


def test_feedback_timestamps_are_utc():
    item = Feedback.model_validate({"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T12:00:00+02:00"})
    assert item.outcomeTimestamp == datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    naive = Feedback.model_validate({"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00"})
    assert naive.outcomeTimestamp == item.outcomeTimestamp
