"""Presentation: an evaluation → the one card a clinician sees, or nothing. Pure (no I/O, no clock).

Shown only for ``likely-eligible`` and ``needs-review``; a ``not-eligible`` patient gets no card
(no alert noise). The card carries the full evaluation object in
``extension["trialcds.eligibility"]`` so machines read the decision, not the prose.

Codings this service defines (stable URIs; change them only with a migration of stored feedback):

* ``OVERRIDE_REASON_SYSTEM`` — the codes of ``overrideReasons`` (from the trial definition); the
  feedback store keeps the code a clinician picked;
* ``TOPIC_SYSTEM`` — the card's ``source.topic``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from fhir.resources.R4B.researchsubject import ResearchSubject
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.criteria.models import CriterionResult, Evaluation, TrialDefinition
from cds_service.protocol import SUMMARY_MAX, Action, Card, Coding, Link, Source, Suggestion

OVERRIDE_REASON_SYSTEM = "https://trialcds.example/override-reason"
TOPIC_SYSTEM = "https://trialcds.example/card-topic"
TOPIC = Coding(system=TOPIC_SYSTEM, code="trial-screening", display="Clinical trial screening")
CARD_VERDICTS = ("likely-eligible", "needs-review")
STATUS_MARK = {"pass": "✅ pass", "fail": "❌ fail", "unknown": "❔ unknown"}
MAX_NOTES = 10


def card_for(evaluation: Evaluation, trial: TrialDefinition, patient_id: str, now: datetime,
             new_uuid: Callable[[], str] = lambda: str(uuid.uuid4())) -> Card | None:
    """The card for this evaluation, or None when there is nothing to say."""
    if evaluation.verdict not in CARD_VERDICTS:
        return None
    return Card(
        uuid=new_uuid(),
        summary=summary(evaluation, trial),
        detail=detail(evaluation, trial),
        indicator="info",
        source=Source(label=f"{trial.id} ({trial.acronym or trial.title}) — trialcds eligibility screening",
                      url=trial.url, topic=TOPIC),
        suggestions=suggestions(evaluation, trial, patient_id, now, new_uuid),
        selectionBehavior="any",
        overrideReasons=[Coding(system=OVERRIDE_REASON_SYSTEM, code=r.code, display=r.display)
                         for r in trial.overrideReasons] or None,
        links=[Link(label=f"{trial.id} on ClinicalTrials.gov", url=trial.url, type="absolute")],
        extension={"trialcds.eligibility": evaluation.to_json()},
    )


# --- summary ---------------------------------------------------------------------------------------

def trial_name(trial: TrialDefinition) -> str:
    return f"{trial.id} ({trial.acronym})" if trial.acronym else trial.id


def open_criteria(evaluation: Evaluation) -> list[CriterionResult]:
    """Automated criteria the record could not decide: what makes a verdict ``needs-review``."""
    return [c for c in evaluation.criteria if c.automated and c.status == "unknown"]


def summary(evaluation: Evaluation, trial: TrialDefinition) -> str:
    """Trial, verdict and the one next step, in under 140 characters."""
    if evaluation.verdict == "likely-eligible":
        text = f"{trial_name(trial)}: likely eligible — refer to the study team for screening"
    else:
        n = len(open_criteria(evaluation))
        what = f"{n} open criteri{'on' if n == 1 else 'a'}" if n else "the open criteria"
        text = f"{trial_name(trial)}: needs review — resolve {what}, then consider referral"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


# --- detail (GitHub-flavoured markdown) --------------------------------------------------------------

def detail(evaluation: Evaluation, trial: TrialDefinition) -> str:
    verdict = evaluation.verdict.replace("-", " ")
    name = f"{trial.id}, {trial.acronym}" if trial.acronym else trial.id
    parts = [f"**{verdict.capitalize()}** for *{trial.title}* ({name}), as of {evaluation.asOf}. "
             f"Site: {trial.site}; status: {trial.status}.",
             criteria_table(evaluation.criteria),
             "### Facts\n\n" + "\n".join(f"- {line}" for line in fact_lines(evaluation.facts)),
             "### To confirm at screening\n\n" + "\n".join(f"- {line}" for line in to_confirm(evaluation))]
    if evaluation.notes:
        notes = evaluation.notes[:MAX_NOTES]
        more = len(evaluation.notes) - len(notes)
        parts.append("### Data notes\n\n" + "\n".join(f"- {cell(n)}" for n in notes)
                     + (f"\n- … and {more} more" if more else ""))
    return "\n\n".join(parts)


def cell(text: str) -> str:
    """Text safe inside a markdown table cell (pipes and line breaks would break the row)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def criteria_table(criteria: Iterable[CriterionResult]) -> str:
    rows = ["| Status | Criterion | Reason | Evidence |", "|---|---|---|---|"]
    for c in criteria:
        kind = "inclusion" if c.type == "inclusion" else "exclusion"
        mode = "" if c.automated else ", review"
        evidence = ", ".join(f"`{cell(ref)}`" for ref in c.evidence) or "—"
        rows.append(f"| {STATUS_MARK[c.status]} | {cell(c.label)} ({kind}{mode}) | {cell(c.reason)} | {evidence} |")
    return "\n".join(rows)


def to_confirm(evaluation: Evaluation) -> list[str]:
    """The automated criteria the record left open (they made the verdict), then the review criteria."""
    lines = [f"{cell(c.label)} — not decided from the record: {cell(c.reason)}" for c in open_criteria(evaluation)]
    review = [c for c in evaluation.criteria if not c.automated and c.status != "fail"]
    lines += [f"{cell(c.label)} — {cell(c.reason)}" for c in review]
    return lines or ["nothing beyond the usual screening visit"]


def fact_lines(facts: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in facts.items():
        label, render = FACTS.get(key, (key, _generic))
        lines.append(f"**{label}**: {render(value) if value else 'not recorded'}")
    return lines or ["none recorded"]


def _ca19_9(f: dict[str, Any]) -> str:
    latest, baseline = f["latest"], f.get("baseline")
    text = f"{latest['value']:g} U/mL on {latest['date']}"
    if f.get("elevated"):
        text += f" (above {f.get('upperNormal', 37):g})"
    if baseline:
        change = f.get("changePercent")
        trend = f", {change:+g}%" if change is not None else ""
        text += f"; baseline {baseline['value']:g} U/mL on {baseline['date']}{trend}"
    return text


def _timing(f: dict[str, Any]) -> str:
    return (f"{f.get('timing', 'unknown')} (PDAC since {f.get('pdacOnset') or 'unknown'}, "
            f"liver metastases since {f.get('liverMetastasisOnset') or 'unknown'})")


def _chemotherapy(f: dict[str, Any]) -> str:
    drugs = ", ".join(f.get("drugs") or ())
    regimen = f"{f['regimen']} — " if f.get("regimen") else ""
    return f"{regimen}{drugs}; started {f.get('start') or 'on an unknown date'}"


def _imaging(f: dict[str, Any]) -> str:
    return f"{'/'.join(f.get('modalities') or ()) or 'imaging'} on {f.get('date')}"


def _lesions(f: dict[str, Any]) -> str:
    sizes = ", ".join(f"{d:g}" for d in f.get("diametersMm") or ())
    return (f"{f.get('count')} on {f.get('assessed')}, largest {f.get('largestMm'):g} mm ({sizes} mm); "
            f"{f.get('needResection', 0)} ≥ 20 mm (resection rather than ablation)")


def _generic(value: Any) -> str:
    return cell(value)


FACTS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "ca19_9": ("CA 19-9", _ca19_9),
    "metastasisTiming": ("Liver metastases", _timing),
    "chemotherapy": ("Chemotherapy", _chemotherapy),
    "stagingImaging": ("Staging imaging", _imaging),
    "liverLesions": ("Liver lesions", _lesions),
}


# --- suggestions ---------------------------------------------------------------------------------------

def suggestions(evaluation: Evaluation, trial: TrialDefinition, patient_id: str, now: datetime,
                new_uuid: Callable[[], str]) -> list[Suggestion]:
    study_team = f"the {trial.acronym} study team" if trial.acronym else "the study team"
    return [
        Suggestion(label=f"Refer to {study_team}", uuid=new_uuid(), isRecommended=True, actions=[Action(
            type="create", description=f"Create a referral to {study_team} for trial screening",
            resource=referral(evaluation, trial, patient_id, now))]),
        Suggestion(label=f"Record as candidate for {trial.id}", uuid=new_uuid(), actions=[Action(
            type="create", description=f"Create a ResearchSubject (candidate) for {trial.id}",
            resource=research_subject(trial, patient_id))]),
    ]


def referral(evaluation: Evaluation, trial: TrialDefinition, patient_id: str, now: datetime) -> dict[str, Any]:
    resource = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"text": "Referral to clinical trial screening"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": now.isoformat(timespec="seconds"),
        "reasonCode": [{"text": f"Candidate for {trial_name(trial)}: {trial.title}"}],
        "note": [{"text": f"trialcds screening as of {evaluation.asOf}: {evaluation.verdict}. "
                          f"Registry record: {trial.url}"}],
    }
    return _checked(ServiceRequest, resource)


def research_subject(trial: TrialDefinition, patient_id: str) -> dict[str, Any]:
    resource = {
        "resourceType": "ResearchSubject",
        "status": "candidate",
        "study": {"identifier": trial.studyIdentifier.model_dump(), "display": f"{trial_name(trial)}: {trial.title}"},
        "individual": {"reference": f"Patient/{patient_id}"},
    }
    return _checked(ResearchSubject, resource)


def _checked(model: Any, resource: dict[str, Any]) -> dict[str, Any]:
    """The plain-JSON resource, after FHIR R4 validation: an invalid suggestion must never leave."""
    model.model_validate(resource)
    return resource
