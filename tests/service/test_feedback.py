"""Feedback: validated, stored once per delivery, and an override silences the patient's card."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from cds_service.store import card_issue, feedback

from .helpers import FEEDBACK_URL, SERVICE_URL, hook_request, is_operation_outcome, the_card

SLUG = "p01-eligible-gem-nabpac"


@pytest.fixture
def card(client, bundles, trial):
    return the_card(client.post(SERVICE_URL, json=hook_request(bundles[SLUG], trial)))


def overridden(card: dict, when: str = "2026-11-24T10:05:31Z", code: str = "patient-declined") -> dict:
    return {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": when,
                          "overrideReason": {"reason": {"system": "https://trialcds.example/override-reason",
                                                        "code": code, "display": "Patient declined"},
                                             "userComment": "discussed in clinic"}}]}


def rows(app) -> list[dict]:
    with app.extensions["trialcds.engine"].connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(feedback))]


def test_accepted_needs_accepted_suggestions(client, card):
    body = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}
    response = client.post(FEEDBACK_URL, json=body)
    assert response.status_code == 400
    assert is_operation_outcome(response.get_json())
    assert "acceptedSuggestions" in response.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("entry", [
    {"outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"},  # no card
    {"card": "c", "outcome": "dismissed", "outcomeTimestamp": "2026-11-24T10:00:00Z"},  # unknown outcome
    {"card": "c", "outcome": "overridden"},  # no timestamp
    {"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"},
    {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z", "overrideReason": {}},
])
def test_malformed_feedback_is_400(client, entry):
    response = client.post(FEEDBACK_URL, json={"feedback": [entry]})
    assert response.status_code == 400
    assert is_operation_outcome(response.get_json())


def test_accepted_feedback_is_stored_with_its_suggestions(app, client, card):
    chosen = card["suggestions"][0]["uuid"]
    body = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": chosen}],
                          "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}
    assert client.post(FEEDBACK_URL, json=body).status_code == 200
    [row] = rows(app)
    assert (row["card_uuid"], row["outcome"], row["accepted_suggestions"]) == (card["uuid"], "accepted", chosen)
    assert row["service_id"] == "nct05271110"


def test_overridden_feedback_is_stored_with_its_reason(app, client, card):
    response = client.post(FEEDBACK_URL, json=overridden(card))
    assert response.status_code == 200
    [row] = rows(app)
    assert (row["outcome"], row["override_system"], row["override_code"]) == \
        ("overridden", "https://trialcds.example/override-reason", "patient-declined")
    assert row["outcome_at"] == datetime(2026, 11, 24, 10, 5, 31)
    assert row["patient_hash"] and len(row["patient_hash"]) == 64


def test_duplicate_delivery_is_stored_once(app, client, card):
    for _ in range(3):
        assert client.post(FEEDBACK_URL, json=overridden(card)).status_code == 200
    # The same instant spelled differently is the same delivery.
    assert client.post(FEEDBACK_URL, json=overridden(card, when="2026-11-24T11:05:31+01:00")).status_code == 200
    assert len(rows(app)) == 1
    assert client.post(FEEDBACK_URL, json=overridden(card, when="2026-11-24T10:06:00Z")).status_code == 200
    assert len(rows(app)) == 2


def test_after_an_override_the_patient_gets_no_card(client, bundles, trial, card):
    now = datetime.now(timezone.utc).isoformat()
    assert client.post(FEEDBACK_URL, json=overridden(card, when=now)).status_code == 200
    response = client.post(SERVICE_URL, json=hook_request(bundles[SLUG], trial))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
    other = client.post(SERVICE_URL, json=hook_request(bundles["p02-eligible-folfirinox-contained"], trial))
    assert len(other.get_json()["cards"]) == 1, "other patients are not silenced"


def test_suppression_ends_after_the_configured_days(make_app, bundles, trial):
    client = make_app(TRIALCDS_SUPPRESS_DAYS=3).test_client()
    card = the_card(client.post(SERVICE_URL, json=hook_request(bundles[SLUG], trial)))
    four_days_ago = (datetime.now(timezone.utc) - timedelta(days=4)).isoformat()
    assert client.post(FEEDBACK_URL, json=overridden(card, when=four_days_ago)).status_code == 200
    assert len(client.post(SERVICE_URL, json=hook_request(bundles[SLUG], trial)).get_json()["cards"]) == 1
    two_days_ago = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    assert client.post(FEEDBACK_URL, json=overridden(card, when=two_days_ago)).status_code == 200
    assert client.post(SERVICE_URL, json=hook_request(bundles[SLUG], trial)).get_json()["cards"] == []


def test_accepted_feedback_silences_the_card(client, bundles, trial, card):
    # Issue 10: an accepted suggestion puts the patient in the study's pipeline — no card again.
    body = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                          "acceptedSuggestions": [{"id": card["suggestions"][1]["uuid"]}],
                          "outcomeTimestamp": datetime.now(timezone.utc).isoformat()}]}
    assert client.post(FEEDBACK_URL, json=body).status_code == 200
    assert client.post(SERVICE_URL, json=hook_request(bundles[SLUG], trial)).get_json()["cards"] == []


def test_the_raw_patient_id_is_never_stored(app, client, bundles, trial, card, tmp_path):
    client.post(FEEDBACK_URL, json=overridden(card))
    with app.extensions["trialcds.engine"].connect() as conn:
        issued = conn.execute(select(card_issue)).all()
    assert len(issued) == 1 and issued[0].card_uuid == card["uuid"]
    app.extensions["trialcds.engine"].dispose()
    database = Path(tmp_path / "trialcds.sqlite").read_bytes()
    assert SLUG.encode() not in database  # the seed patient's id
    assert b"discussed in clinic" not in database  # free-text comments are not kept


def test_the_salt_survives_a_restart(make_app, bundles, trial):
    first = make_app().extensions["trialcds.store"].patient_hash("p-1")
    second = make_app().extensions["trialcds.store"].patient_hash("p-1")
    assert first == second
    assert make_app(TRIALCDS_SALT="configured").extensions["trialcds.store"].patient_hash("p-1") != first


def test_unknown_card_feedback_is_ignored(app, client):
    # Issue 11: feedback only for cards this service issued (the rest is counted in the log line).
    body = {"feedback": [{"card": "never-issued", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}
    assert client.post(FEEDBACK_URL, json=body).status_code == 200
    assert rows(app) == []
