"""Hook calls with the full prefetch: every seed patient's verdict, and the card's contents."""

from __future__ import annotations

import re

import pytest
from fhir.resources.R4B.researchsubject import ResearchSubject
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.seeding import load_expected

from .helpers import CARD_VERDICTS, SERVICE_URL, empty_values, hook_request, the_card

SLUGS = sorted(load_expected()["patients"])
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.mark.parametrize("slug", SLUGS)
def test_seed_patient_gets_its_expected_verdict(client, bundles, trial, expected, slug):
    response = client.post(SERVICE_URL, json=hook_request(bundles[slug], trial))
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    want = expected[slug]
    if want["verdict"] not in CARD_VERDICTS:
        assert cards == [], f"{slug} is not eligible and must get no card"
        return
    assert len(cards) == 1
    evaluation = cards[0]["extension"]["trialcds.eligibility"]
    assert evaluation["verdict"] == want["verdict"]
    assert {c["id"]: c["status"] for c in evaluation["criteria"]} == want["criteria"]


def test_every_seed_verdict_is_covered(expected):
    # The parametrised test above only means something if both kinds of patient are present.
    verdicts = {p["verdict"] for p in expected.values()}
    assert verdicts == {"likely-eligible", "needs-review", "not-eligible"}


@pytest.fixture
def eligible_card(client, bundles, trial, expected):
    slug = next(s for s in SLUGS if expected[s]["verdict"] == "likely-eligible")
    return the_card(client.post(SERVICE_URL, json=hook_request(bundles[slug], trial))), bundles[slug]


@pytest.fixture
def review_card(client, bundles, trial, expected):
    slug = next(s for s in SLUGS if expected[s]["verdict"] == "needs-review")
    return the_card(client.post(SERVICE_URL, json=hook_request(bundles[slug], trial)))


def test_card_shape(eligible_card, trial):
    card, _ = eligible_card
    assert UUID.match(card["uuid"])
    assert card["indicator"] == "info"
    assert card["source"]["url"] == "https://clinicaltrials.gov/study/NCT05271110"
    assert card["source"]["label"] and {"system", "code"} <= set(card["source"]["topic"])
    assert card["links"] == [{"label": "NCT05271110 on ClinicalTrials.gov",
                              "url": "https://clinicaltrials.gov/study/NCT05271110", "type": "absolute"}]
    assert card["selectionBehavior"] == "any"
    outside_extension = {k: v for k, v in card.items() if k != "extension"}
    assert empty_values(outside_extension) == []


def test_summary_names_verdict_trial_and_next_step(eligible_card, review_card):
    card, _ = eligible_card
    assert len(card["summary"]) < 140 and len(review_card["summary"]) < 140
    assert card["summary"].startswith("Likely eligible") and "NCT05271110" in card["summary"]
    assert review_card["summary"].startswith("Needs review") and "NCT05271110" in review_card["summary"]
    # The trial is not yet recruiting: the next step is to flag the patient, not to refer now.
    assert "flag for the study team" in card["summary"] and "refer" not in card["summary"].lower()


def test_detail_is_short_markdown_in_the_contract_order(review_card):
    from markdown_it import MarkdownIt

    detail = review_card["detail"]
    evaluation = review_card["extension"]["trialcds.eligibility"]
    assert not [line for line in detail.splitlines() if line.lstrip().startswith("|")]  # no criterion table
    text = re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").render(detail))
    sections = ["What needs checking", "To confirm at screening", "Key facts", "Met"]
    positions = [text.index(f"{name}") for name in sections]
    assert positions == sorted(positions)
    checking, confirm = text[positions[0]:positions[1]], text[positions[1]:positions[2]]
    open_labels = [c["label"] for c in evaluation["criteria"] if c["automated"] and c["status"] == "unknown"]
    review_labels = [c["label"] for c in evaluation["criteria"] if not c["automated"]]
    assert open_labels, "a needs-review card has automated unknowns"
    assert all(label in checking for label in open_labels)
    assert all(label in confirm for label in review_labels)
    for criterion in evaluation["criteria"]:
        for ref in criterion["evidence"]:
            assert ref not in detail  # resource ids stay in the evaluation object


def test_suggestions_are_valid_fhir_r4_resources(eligible_card):
    card, bundle = eligible_card
    patient = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    suggestions = card["suggestions"]
    assert len({s["uuid"] for s in suggestions} | {card["uuid"]}) == 3
    resources = {a["resource"]["resourceType"]: a["resource"] for s in suggestions for a in s["actions"]}
    assert {a["type"] for s in suggestions for a in s["actions"]} == {"create"}

    referral = ServiceRequest.model_validate(resources["ServiceRequest"])
    assert (referral.status, referral.intent) == ("active", "order")
    assert referral.subject.reference == f"Patient/{patient}"
    assert referral.code.text.startswith("Referral for clinical trial screening")
    assert referral.reasonCode[0].text and "likely-eligible" in referral.note[0].text
    assert referral.performer and referral.performer[0].display  # addressed to the study team
    pdac = [c for c in card["extension"]["trialcds.eligibility"]["criteria"] if c["id"] == "pdac-diagnosis"]
    assert [r.reference for r in referral.reasonReference] == pdac[0]["evidence"][:1]
    assert referral.authoredOn is not None

    subject = ResearchSubject.model_validate(resources["ResearchSubject"])
    assert subject.status == "candidate"
    assert (subject.study.identifier.system, subject.study.identifier.value) == \
        ("https://clinicaltrials.gov", "NCT05271110")
    assert subject.individual.reference == f"Patient/{patient}"


def test_override_reasons_come_from_the_trial_definition(eligible_card, trial):
    card, _ = eligible_card
    reasons = card["overrideReasons"]
    assert [(r["code"], r["display"]) for r in reasons] == [(r.code, r.display) for r in trial.overrideReasons]
    assert {r["system"] for r in reasons} == {"https://trialcds.example/override-reason"}


def test_extension_holds_the_evaluation_object(eligible_card, trial):
    card, _ = eligible_card
    evaluation = card["extension"]["trialcds.eligibility"]
    assert evaluation["trial"] == "NCT05271110"
    assert evaluation["verdict"] == "likely-eligible"
    assert [c["id"] for c in evaluation["criteria"]] == [c.id for c in trial.criteria]


def test_unknown_request_fields_are_ignored(client, bundles, trial):
    body = hook_request(bundles[SLUGS[0]], trial)
    body["extension"] = {"com.example.future": {"x": 1}}
    body["someFutureField"] = [1, 2, 3]
    body["context"]["someContextField"] = "kept out of the way"
    assert client.post(SERVICE_URL, json=body).status_code == 200


def test_prefetch_null_means_nothing_there(client, bundles, trial, expected):
    """``null`` for a key is an answer (no data), not a reason to fetch or to fail."""
    slug = next(s for s in SLUGS if expected[s]["verdict"] == "likely-eligible")
    body = hook_request(bundles[slug], trial)
    body["prefetch"]["imagingStudies"] = None
    card = the_card(client.post(SERVICE_URL, json=body))
    criteria = {c["id"]: c["status"] for c in card["extension"]["trialcds.eligibility"]["criteria"]}
    assert criteria["extrahepatic-metastases"] == "unknown"  # no staging imaging any more
