"""What the card says: verdict at a glance, a next step that fits the trial's status, clinical wording,
and suggestions that are valid FHIR R4 addressed to the study team."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import pytest
from fhir.resources.R4B.researchsubject import ResearchSubject
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.cards import StudyTeam, card_for, summary
from cds_service.presentation.wording import without_semantic_tags
from cds_service.seeding import patient_id
from tests.cards.conftest import STUDY_TEAM, card_of, evaluate, first_with_verdict, now, poisoned, render, structure


def test_the_two_verdicts_read_differently_from_the_first_word(seeds, candidate_slugs):
    first_words = {}
    for slug in candidate_slugs:
        card = card_of(seeds[slug])
        verdict = card.extension["trialcds.eligibility"]["verdict"]
        assert len(card.summary) < 140
        first_words.setdefault(verdict, set()).add(" ".join(card.summary.split()[:2]))
    assert first_words == {"likely-eligible": {"Likely eligible"}, "needs-review": {"Needs review:"}}


def with_status(trial, status: str):
    """The same trial with another registry status (a frozen dataclass or a pydantic model)."""
    if dataclasses.is_dataclass(trial):
        return dataclasses.replace(trial, status=status)
    return trial.model_copy(update={"status": status})


def test_next_step_follows_the_trial_status(seeds, trial):
    evaluation = evaluate(seeds[first_with_verdict("likely-eligible")])
    assert trial.status.startswith("not yet recruiting")
    waiting = summary(evaluation, trial)
    assert "flag for the study team" in waiting and "refer" not in waiting.lower()
    recruiting = with_status(trial, "recruiting (registry, 2027)")
    assert "refer to the study team" in summary(evaluation, recruiting)
    card = card_for(evaluation, recruiting, "p1", now(), study_team=STUDY_TEAM)
    assert card.suggestions[0].label.startswith("Refer to")
    card = card_for(evaluation, trial, "p1", now(), study_team=STUDY_TEAM)
    assert card.suggestions[0].label.startswith("Flag for")


def test_detail_has_no_emoji_no_resource_ids_and_no_table(seeds, candidate_slugs):
    for slug in candidate_slugs:
        card = card_of(seeds[slug])
        evaluation = card.extension["trialcds.eligibility"]
        symbols = [ch for ch in card.summary + card.detail if unicodedata.category(ch) == "So"]
        assert symbols == [], (slug, symbols)  # statuses are words (✅ ❌ ❔ render as boxes without an emoji font)
        refs = {ref for c in evaluation["criteria"] for ref in c["evidence"]}
        assert not [ref for ref in refs if ref in card.detail or ref.replace("/", "\\/") in card.detail], slug
        assert "table" not in {tag for tag, _ in structure(render(card.detail)).tags}


def test_snomed_semantic_tags_are_stripped_from_what_the_card_shows(seeds):
    assert without_semantic_tags("Cholangitis (disorder) (since 2026-05-03)") == "Cholangitis (since 2026-05-03)"
    assert without_semantic_tags("Liver structure (body structure)") == "Liver structure"
    assert without_semantic_tags("Hypertension (primary)") == "Hypertension (primary)"  # not a semantic tag
    for slug in ("p16-review-cholangitis-heart-failure", first_with_verdict("needs-review")):
        bundle = seeds[slug]
        card = card_of(poisoned(bundle, " (disorder)"))
        text = "".join(structure(render(card.detail)).text)
        assert "(disorder)" not in text and "disorder" not in text.lower(), slug


def test_card_names_key_facts_as_a_clinician_knows_them(seeds):
    card = card_of(seeds[first_with_verdict("likely-eligible")])
    text = "".join(structure(render(card.detail)).text)
    imaging = card.extension["trialcds.eligibility"]["facts"]["stagingImaging"]
    assert f"{imaging['modalities'][0]} {imaging['date']}" in text  # "CT 2026-11-12"
    for label in ("CA 19-9", "Liver metastases", "Chemotherapy", "Last imaging", "Liver lesions"):
        assert f"{label}:" in text


@pytest.mark.parametrize("verdict", ["likely-eligible", "needs-review"])
def test_suggestions_validate_as_fhir_r4_and_address_the_study_team(seeds, verdict):
    bundle = seeds[first_with_verdict(verdict)]
    card = card_of(bundle)
    resources = {a.resource["resourceType"]: a.resource for s in card.suggestions for a in s.actions}
    assert len({s.uuid for s in card.suggestions} | {card.uuid}) == 3

    referral = ServiceRequest.model_validate(resources["ServiceRequest"])
    assert [(p.reference, p.display) for p in referral.performer] == [(STUDY_TEAM.reference, STUDY_TEAM.display)]
    pdac = next(c for c in card.extension["trialcds.eligibility"]["criteria"] if c["id"] == "pdac-diagnosis")
    assert [r.reference for r in referral.reasonReference] == pdac["evidence"][:1]
    condition_ids = {e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"}
    assert referral.reasonReference[0].reference.split("/", 1)[1] in condition_ids
    assert referral.subject.reference == f"Patient/{patient_id(bundle)}"

    subject = ResearchSubject.model_validate(resources["ResearchSubject"])
    assert subject.status == "candidate"
    assert (subject.study.identifier.system, subject.study.identifier.value) == \
        ("https://clinicaltrials.gov", "NCT05271110")


def test_without_a_configured_study_team_the_referral_still_names_one_by_display(seeds, trial):
    evaluation = evaluate(seeds[first_with_verdict("likely-eligible")])
    card = card_for(evaluation, trial, "p1", now())
    referral = ServiceRequest.model_validate(card.suggestions[0].actions[0].resource)
    assert referral.performer[0].reference is None
    assert re.match(r"^ScanPan \(NCT05271110\) study team, ", referral.performer[0].display)


@pytest.mark.parametrize("reference", ["Patient/p1", "javascript:alert(1)", "PractitionerRole/", "HealthcareService/a b"])
def test_a_study_team_setting_that_is_not_a_team_reference_is_refused(reference):
    with pytest.raises(ValueError):
        StudyTeam.from_config({"TRIALCDS_STUDY_TEAM_REFERENCE": reference})
    assert StudyTeam.from_config({"TRIALCDS_STUDY_TEAM_REFERENCE": "https://ehr.example/fhir/PractitionerRole/7"})
