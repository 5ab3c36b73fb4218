"""Presentation: an evaluation → the one card a clinician sees, or nothing. Pure (no I/O, no clock).

Shown only for ``likely-eligible`` and ``needs-review``; a ``not-eligible`` patient gets no card
(no alert noise). A clinician gives the card a few seconds, so it says what it wants in one look:

* the summary starts with the verdict ("Likely eligible" / "Needs review") and ends with the one
  next step, which follows the trial's status (not yet recruiting → flag for the study team);
* the detail is short and in this order: what needs checking (each automated criterion the record
  left open, with its reason) → to confirm at screening (the review criteria) → key facts → one
  line naming the criteria met. No criterion table: that stays in the evaluation object, carried
  whole in ``extension["trialcds.eligibility"]`` so machines read the decision, not the prose.

Every text from the record or the request reaches the detail through
:func:`cds_service.presentation.escape.md` — the one escaping step (see that module). The summary
holds only this service's own words (the trial's name from its definition, counts).

Codings this service defines (stable URIs; change them only with a migration of stored feedback):

* ``OVERRIDE_REASON_SYSTEM`` — the codes of ``overrideReasons`` (from the trial definition); the
  feedback store keeps the code a clinician picked;
* ``TOPIC_SYSTEM`` — the card's ``source.topic``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cds_service.criteria.models import CriterionResult, Evaluation, TrialDefinition
from cds_service.presentation.escape import Markdown, join, md
from cds_service.presentation.wording import count, criterion_short_name, without_semantic_tags
from cds_service.protocol import SUMMARY_MAX, Action, Card, Coding, Link, Source, Suggestion

OVERRIDE_REASON_SYSTEM = "https://trialcds.example/override-reason"
TOPIC_SYSTEM = "https://trialcds.example/card-topic"
TOPIC = Coding(system=TOPIC_SYSTEM, code="trial-screening", display="Clinical trial screening")
CARD_VERDICTS = ("likely-eligible", "needs-review")
# A FHIR relative reference this service may copy into a suggested resource (never a urn:uuid or a
# contained "#id": those mean nothing outside the record they came from).
_RELATIVE_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
# Who may receive referrals: a practitioner, a role, a team, a service or an organisation.
_TEAM_REFERENCE = re.compile(r"^(https?://\S+/)?(PractitionerRole|Practitioner|CareTeam|HealthcareService|Organization)"
                             r"/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class StudyTeam:
    """Who receives the referral: a deployment setting (``TRIALCDS_STUDY_TEAM_REFERENCE`` /
    ``TRIALCDS_STUDY_TEAM_DISPLAY``), e.g. ``PractitionerRole/…`` or ``HealthcareService/…``."""

    reference: str | None = None
    display: str | None = None

    def __post_init__(self) -> None:
        if self.reference is not None and not _TEAM_REFERENCE.match(self.reference):
            raise ValueError("TRIALCDS_STUDY_TEAM_REFERENCE must be a FHIR reference such as "
                             "PractitionerRole/<id> or HealthcareService/<id> (optionally absolute)")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StudyTeam:
        return cls(reference=config.get("TRIALCDS_STUDY_TEAM_REFERENCE") or None,
                   display=config.get("TRIALCDS_STUDY_TEAM_DISPLAY") or None)

    def performer(self, trial: TrialDefinition) -> dict[str, str]:
        display = self.display or f"{trial_name(trial)} study team, {trial.site}"
        return {"reference": self.reference, "display": display} if self.reference else {"display": display}


def card_for(evaluation: Evaluation, trial: TrialDefinition, patient_id: str, now: datetime,
             new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
             study_team: StudyTeam = StudyTeam()) -> Card | None:
    """The card for this evaluation, or None when there is nothing to say."""
    if evaluation.verdict not in CARD_VERDICTS:
        return None
    return Card(
        uuid=new_uuid(),
        summary=summary(evaluation, trial),
        detail=detail(evaluation, trial),
        indicator="info",
        source=Source(label=f"{trial_name(trial)} — trialcds eligibility screening", url=trial.url, topic=TOPIC),
        suggestions=suggestions(evaluation, trial, patient_id, now, new_uuid, study_team),
        selectionBehavior="any",
        overrideReasons=[Coding(system=OVERRIDE_REASON_SYSTEM, code=r.code, display=r.display)
                         for r in trial.overrideReasons] or None,
        links=[Link(label=f"{trial.id} on ClinicalTrials.gov", url=trial.url, type="absolute")],
        extension={"trialcds.eligibility": evaluation.to_json()},
    )


# --- summary: verdict first, then the one next step ---------------------------------------------------

def trial_name(trial: TrialDefinition) -> str:
    return f"{trial.acronym} ({trial.id})" if trial.acronym else trial.id


def is_recruiting(trial: TrialDefinition) -> bool:
    """The registry status as the definition words it: "recruiting (…)" yes; "not yet recruiting",
    "active, not recruiting", "completed" … no."""
    return trial.status.strip().lower().startswith("recruiting")


def next_step(trial: TrialDefinition) -> str:
    return "refer to the study team" if is_recruiting(trial) else "flag for the study team (not yet recruiting)"


def open_criteria(evaluation: Evaluation) -> list[CriterionResult]:
    """Automated criteria the record could not decide: what makes a verdict ``needs-review``."""
    return [c for c in evaluation.criteria if c.automated and c.status == "unknown"]


def summary(evaluation: Evaluation, trial: TrialDefinition) -> str:
    """Verdict, trial and the one next step, in under 140 characters; the two verdicts start differently."""
    if evaluation.verdict == "likely-eligible":
        text = f"Likely eligible for {trial_name(trial)} — {next_step(trial)}"
    else:
        n = len(open_criteria(evaluation))
        text = f"Needs review: {count(n, 'item')} to check for {trial_name(trial)}, then {next_step(trial)}"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


# --- detail (GitHub-flavoured markdown, every record text escaped) ---------------------------------------

def detail(evaluation: Evaluation, trial: TrialDefinition) -> str:
    parts = [headline(evaluation, trial)]
    checking = open_criteria(evaluation)
    if checking:
        parts.append(section("What needs checking", [criterion_line(c) for c in checking]))
    parts.append(section("To confirm at screening", to_confirm(evaluation)))
    parts.append(section("Key facts", fact_lines(evaluation.facts)))
    parts.append(criteria_met(evaluation))
    if evaluation.notes:
        parts.append(md("_{}_", f"Data notes (entries skipped or ignored): {len(evaluation.notes)}, "
                                 "listed in the evaluation."))
    return join(parts)


def headline(evaluation: Evaluation, trial: TrialDefinition) -> Markdown:
    if evaluation.verdict == "likely-eligible":
        verdict, why = "Likely eligible", "every criterion the record can answer is met"
    else:
        n = len(open_criteria(evaluation))
        verdict, why = "Needs review", f"{count(n, 'criterion', 'criteria')} could not be decided from the record"
    return md("**{}** — {}, as of {}. Trial status: {}.", verdict, why, evaluation.asOf, trial.status)


def section(title: str, lines: list[Markdown]) -> Markdown:
    return join([md("**{}**", title), join([md("- {}", line) for line in lines], "\n")], "\n\n")


def clinical(text: str) -> str:
    """A reason or a display as a clinician reads it: SNOMED semantic tags dropped."""
    return without_semantic_tags(text)


def criterion_line(c: CriterionResult) -> Markdown:
    return md("{}: {}", c.label, clinical(c.reason))


def to_confirm(evaluation: Evaluation) -> list[Markdown]:
    """The review criteria (never decided from a record), by name: the heading already says why they
    are here, and each reason would add a line to every card (they stay in the evaluation)."""
    review = [c for c in evaluation.criteria if not c.automated and c.status != "fail"]
    return [md("{}", c.label) for c in review] or [md("nothing beyond the usual screening visit")]


def criteria_met(evaluation: Evaluation) -> Markdown:
    met = [c for c in evaluation.criteria if c.automated and c.status == "pass"]
    inclusion = ", ".join(criterion_short_name(c.id) for c in met if c.type == "inclusion") or "none"
    exclusion = ", ".join(criterion_short_name(c.id) for c in met if c.type == "exclusion") or "none checked"
    return md("**Met** — inclusion: {}. No exclusion found for: {}.", inclusion, exclusion)


# --- key facts ------------------------------------------------------------------------------------------

def fact_lines(facts: dict[str, Any]) -> list[Markdown]:
    lines = []
    for key, value in facts.items():
        label, render = FACTS.get(key, (key, _generic))
        try:
            text = render(value) if value else None
        except (KeyError, TypeError, ValueError):
            text = _generic(value)  # a fact shaped differently from what this card knows: shown plainly
        lines.append(md("{}: {}", label, text or "not recorded"))
    return lines or [md("none recorded")]


def _num(value: Any) -> str:
    return f"{float(value):g}"


def _ca19_9(f: dict[str, Any]) -> str:
    latest, baseline = f["latest"], f.get("baseline")
    unit = latest.get("unit") or "U/mL"
    text = f"{_num(latest['value'])} {unit} on {latest['date']}"
    if baseline:
        change = f.get("changePercent")
        trend = f"{'down' if change < 0 else 'up'} {abs(change):.0f}% from " if change is not None else "baseline "
        text += f", {trend}{_num(baseline['value'])} on {baseline['date']}"
    if f.get("elevated"):
        text += f" (above {_num(f.get('upperNormal', 37))})"
    return text


def _timing(f: dict[str, Any]) -> str:
    return (f"{f.get('timing') or 'timing unknown'} (PDAC {f.get('pdacOnset') or 'date unknown'}, "
            f"liver {f.get('liverMetastasisOnset') or 'date unknown'})")


def _chemotherapy(f: dict[str, Any]) -> str:
    what = f.get("regimen") or " + ".join(f.get("drugs") or ()) or "recorded"
    return f"{clinical(what)} since {f.get('start') or 'an unknown date'}"


def _imaging(f: dict[str, Any]) -> str:
    return f"{'/'.join(f.get('modalities') or ()) or 'imaging'} {f.get('date')}"


def _lesions(f: dict[str, Any]) -> str:
    sizes = ", ".join(_num(d) for d in f.get("diametersMm") or ())
    text = f"{f.get('count')} on {f.get('assessed')}" + (f" ({sizes} mm)" if sizes else "")
    if f.get("needResection"):
        text += f"; {f['needResection']} ≥ 20 mm (resection rather than ablation)"
    return text


def _generic(value: Any) -> str:
    return clinical(str(value))


FACTS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "ca19_9": ("CA 19-9", _ca19_9),
    "metastasisTiming": ("Liver metastases", _timing),
    "chemotherapy": ("Chemotherapy", _chemotherapy),
    "stagingImaging": ("Last imaging", _imaging),
    "liverLesions": ("Liver lesions", _lesions),
}


# --- suggestions ---------------------------------------------------------------------------------------

def suggestions(evaluation: Evaluation, trial: TrialDefinition, patient_id: str, now: datetime,
                new_uuid: Callable[[], str], study_team: StudyTeam = StudyTeam()) -> list[Suggestion]:
    verb = "Refer to" if is_recruiting(trial) else "Flag for"
    team = f"the {trial.acronym} study team" if trial.acronym else "the study team"
    return [
        Suggestion(label=f"{verb} {team}", uuid=new_uuid(), isRecommended=True, actions=[Action(
            type="create", description=f"Create a referral to {team} for trial screening",
            resource=referral(evaluation, trial, patient_id, now, study_team))]),
        Suggestion(label=f"Record as candidate for {trial.id}", uuid=new_uuid(), actions=[Action(
            type="create", description=f"Create a ResearchSubject (candidate) for {trial.id}",
            resource=research_subject(trial, patient_id))]),
    ]


def diagnosis_reference(evaluation: Evaluation, trial: TrialDefinition) -> str | None:
    """The PDAC Condition the referral is for: the evidence of the trial's diagnosis criterion."""
    diagnosis_ids = {c.id for c in trial.criteria if c.rule == "pdac_diagnosis"}
    for c in evaluation.criteria:
        if c.id in diagnosis_ids:
            return next((r for r in c.evidence if r.startswith("Condition/") and _RELATIVE_REFERENCE.match(r)), None)
    return None


def referral(evaluation: Evaluation, trial: TrialDefinition, patient_id: str, now: datetime,
             study_team: StudyTeam = StudyTeam()) -> dict[str, Any]:
    """A ServiceRequest addressed to the study team, for the PDAC Condition. Valid FHIR R4
    (the tests check it with ``fhir.resources``; not re-validated on every hook call)."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005",
                                  "display": "Patient referral"}]}],
        "code": {"text": f"Referral for clinical trial screening: {trial_name(trial)}"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": now.isoformat(timespec="seconds"),
        "performer": [study_team.performer(trial)],
        "reasonCode": [{"text": f"Candidate for {trial_name(trial)}: {trial.title}"}],
        "note": [{"text": f"trialcds screening as of {evaluation.asOf}: {evaluation.verdict}. "
                          f"Registry record: {trial.url}"}],
    }
    condition = diagnosis_reference(evaluation, trial)
    if condition:
        resource["reasonReference"] = [{"reference": condition}]
    return resource


def research_subject(trial: TrialDefinition, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "ResearchSubject",
        "status": "candidate",
        "study": {"identifier": trial.studyIdentifier.model_dump(), "display": f"{trial_name(trial)}: {trial.title}"},
        "individual": {"reference": f"Patient/{patient_id}"},
    }
