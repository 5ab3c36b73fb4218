"""When a card is not shown again — the contract's feedback rules and the pipeline rule, through a real
``trialcds serve`` process (gunicorn, its own SQLite store) called over HTTP, with its JSON log lines.

One server for the module; every test uses its own seed patients, so the rules never see each other's
feedback. Ages of feedback are set with ``outcomeTimestamp`` (the store measures from it).
"""

from __future__ import annotations

import copy
import json
import os
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cds_service.cards import OVERRIDE_REASON_SYSTEM
from cds_service.seeding import anchor_date, patient_id, prefetch_from_bundle, rebase_bundle, seed_bundles
from cds_service.trials import get_trial
from tests.serve_process import running_serve
from tests.service.fhir_server import FhirTestServer

SERVICE = "/cds-services/nct05271110"
STUDY_TEAM = "HealthcareService/scanpan-study-team"
SETTINGS = {
    "TRIALCDS_ACCEPTED_DAYS": "180",
    "TRIALCDS_OVERRIDE_DAYS": "30",
    "TRIALCDS_OVERRIDE_DAYS_BY_REASON": "patient-declined=90,data-incorrect=2",
    "TRIALCDS_DISMISS_DAYS": "1",
    "TRIALCDS_STUDY_TEAM_REFERENCE": STUDY_TEAM,
    "TRIALCDS_STUDY_TEAM_DISPLAY": "ScanPan study team",
}
DR_A, DR_B = "Practitioner/dr-a", "Practitioner/dr-b"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feedback-rules")
    env = {**os.environ, **SETTINGS, "TRIALCDS_DATABASE_URL": f"sqlite:///{folder / 'store.sqlite'}"}
    env.pop("TRIALCDS_DEV", None)
    log_path = folder / "serve.log"
    with running_serve(["--dev", "--workers", "2"], env, log_path) as (base, _process):
        yield base, log_path


@pytest.fixture(scope="module")
def patients() -> dict[str, dict]:
    today = datetime.now(timezone.utc).date()
    return {slug: rebase_bundle(bundle, anchor_date(), today) for slug, bundle in seed_bundles().items()}


# --- calls --------------------------------------------------------------------------------------------------

def post(url: str, body: dict) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def hook(service: tuple[str, Path], bundle: dict, user: str, **fields: Any) -> tuple[list[dict], dict]:
    """The cards of one patient-view call by ``user``, and the call's JSON log line."""
    base, log_path = service
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": user, "patientId": patient_id(bundle)},
            "prefetch": prefetch_from_bundle(bundle, get_trial())}
    body.update(fields)
    status, answer = post(base + SERVICE, body)
    assert status == 200, answer
    return answer["cards"], log_line(log_path, body["hookInstance"])


def log_line(log_path: Path, hook_instance: str) -> dict:
    for line in reversed(log_path.read_text().splitlines()):
        if hook_instance in line and line.startswith("{"):
            entry = json.loads(line)
            if entry.get("hookInstance") == hook_instance:
                return entry
    raise AssertionError(f"no log line for hook call {hook_instance}")


def card_shown(service, bundle: dict, user: str = DR_A) -> dict:
    cards, _ = hook(service, bundle, user)
    assert len(cards) == 1, cards
    return cards[0]


def feedback(service, card: dict, outcome: str, age_days: float = 0, reason: str | None = None) -> None:
    when = datetime.now(timezone.utc) - timedelta(days=age_days)
    item: dict[str, Any] = {"card": card["uuid"], "outcome": outcome,
                            "outcomeTimestamp": when.isoformat(timespec="seconds").replace("+00:00", "Z")}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    if reason:
        display = next(r["display"] for r in card["overrideReasons"] if r["code"] == reason)
        item["overrideReason"] = {"reason": {"system": OVERRIDE_REASON_SYSTEM, "code": reason, "display": display}}
    status, answer = post(service[0] + SERVICE + "/feedback", {"feedback": [item]})
    assert status == 200, answer


def no_card_because(service, bundle: dict, user: str, reason: str) -> None:
    cards, line = hook(service, bundle, user)
    assert cards == [], cards
    assert line["outcome"] == "no-cards" and line.get("suppressed") == reason, line


# --- the four feedback rules -----------------------------------------------------------------------------------

def test_accepted_hides_the_card_from_everyone_for_the_configured_days(service, patients):
    recent, old = patients["p01-eligible-gem-nabpac"], patients["p02-eligible-folfirinox-contained"]
    feedback(service, card_shown(service, recent), "accepted")
    no_card_because(service, recent, DR_A, "accepted")
    no_card_because(service, recent, DR_B, "accepted")
    feedback(service, card_shown(service, old), "accepted", age_days=181)  # beyond TRIALCDS_ACCEPTED_DAYS
    assert card_shown(service, old, DR_B)


def test_override_with_a_reason_hides_it_from_everyone_for_that_reasons_days(service, patients):
    declined = patients["p03-eligible-metachronous-whipple"]      # patient-declined: 90 days
    wrong_data = patients["p04-eligible-stu1-ignored-records"]     # data-incorrect: 2 days
    default = patients["p05-eligible-history-obs"]                 # not-appropriate: the default 30
    expired = patients["p06-eligible-future-dated"]
    feedback(service, card_shown(service, declined), "overridden", age_days=60, reason="patient-declined")
    no_card_because(service, declined, DR_B, "overridden:patient-declined")  # longer than the default 30
    feedback(service, card_shown(service, wrong_data), "overridden", age_days=3, reason="data-incorrect")
    assert card_shown(service, wrong_data, DR_B)  # shorter than the default 30
    feedback(service, card_shown(service, default), "overridden", age_days=29, reason="not-appropriate")
    no_card_because(service, default, DR_B, "overridden:not-appropriate")
    feedback(service, card_shown(service, expired), "overridden", age_days=31, reason="not-appropriate")
    assert card_shown(service, expired, DR_B)


def test_plain_dismiss_hides_it_only_from_the_user_who_dismissed_it(service, patients):
    bundle, yesterday = patients["p10-review-ecog2"], patients["p11-review-provisional-pdac"]
    feedback(service, card_shown(service, bundle, DR_A), "overridden")  # no reason: a plain dismiss
    no_card_because(service, bundle, DR_A, "dismissed-by-user")
    assert card_shown(service, bundle, DR_B)  # another clinician still sees it
    feedback(service, card_shown(service, yesterday, DR_A), "overridden", age_days=1.5)
    assert card_shown(service, yesterday, DR_A)  # TRIALCDS_DISMISS_DAYS (1) has passed


# --- already in the study's pipeline ------------------------------------------------------------------------------

def with_resources(bundle: dict, *resources: dict) -> dict:
    copied = copy.deepcopy(bundle)
    pid = patient_id(bundle)
    for i, resource in enumerate(resources):
        resource = {"id": f"{pid}-pipeline-{i}", **resource}
        copied["entry"].append({"fullUrl": f"{resource['resourceType']}/{resource['id']}", "resource": resource})
    return copied


def research_subject(bundle: dict, status: str) -> dict:
    return {"resourceType": "ResearchSubject", "status": status,
            "study": {"identifier": {"system": "https://clinicaltrials.gov", "value": "NCT05271110"}},
            "individual": {"reference": f"Patient/{patient_id(bundle)}"}}


def referral(bundle: dict, status: str, performer: str) -> dict:
    return {"resourceType": "ServiceRequest", "status": status, "intent": "order",
            "code": {"text": "Referral to trial screening"}, "subject": {"reference": f"Patient/{patient_id(bundle)}"},
            "performer": [{"reference": performer}]}


def test_a_patient_already_in_the_pipeline_gets_no_card(service, patients):
    subject = patients["p12-review-stale-imaging"]
    no_card_because(service, with_resources(subject, research_subject(subject, "withdrawn")), DR_A,
                    "in-pipeline:research-subject")  # any status counts
    referred = patients["p13-review-undetermined-no-measurements"]
    no_card_because(service, with_resources(referred, referral(referred, "active", STUDY_TEAM)), DR_A,
                    "in-pipeline:referred-to-study-team")
    # Referrals elsewhere, or no longer active, and other studies do not count.
    other = patients["p14-review-chemo-not-taken"]
    elsewhere = with_resources(other, referral(other, "active", "HealthcareService/cardiology"),
                               referral(other, "completed", STUDY_TEAM),
                               {**research_subject(other, "on-study"),
                                "study": {"identifier": {"system": "https://clinicaltrials.gov", "value": "NCT00000000"}}})
    cards, line = hook(service, elsewhere, DR_A)
    assert len(cards) == 1 and "suppressed" not in line


def test_pipeline_keys_absent_from_prefetch_are_fetched_from_the_fhir_server(service, patients):
    bundle = patients["p15-review-status-before-chemo-af"]
    enrolled = with_resources(bundle, research_subject(bundle, "candidate"))
    prefetch = prefetch_from_bundle(enrolled, get_trial())
    del prefetch["researchSubjects"], prefetch["serviceRequests"]
    with FhirTestServer({"x": enrolled}) as fhir:
        cards, line = hook(service, enrolled, DR_A, prefetch=prefetch, fhirServer=fhir.base_url)
        asked = fhir.paths()
    assert cards == [] and line.get("suppressed") == "in-pipeline:research-subject", line
    assert {path.split("?")[0] for path in asked} == {"/fhir/ResearchSubject", "/fhir/ServiceRequest"}


def test_suppressed_calls_never_log_patient_or_user_ids(service, patients):
    log_text = service[1].read_text()
    for slug in ("p01-eligible-gem-nabpac", "p10-review-ecog2", "p12-review-stale-imaging"):
        assert patient_id(patients[slug]) not in log_text
    assert DR_A not in log_text and DR_B not in log_text
