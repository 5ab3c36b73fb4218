"""Runs a trial's rules over a patient's facts and decides the verdict."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from cds_service.criteria.models import CriterionResult, Evaluation, TrialDefinition
from cds_service.criteria.rules import RULES, derived_once
from cds_service.criteria.summaries import SUMMARIES
from fhir_mappings import PatientFacts, PatientRecord, extract_facts


def check_definition(trial: TrialDefinition) -> None:
    """Fail at load time, not at a patient's bedside, when a definition names an unknown rule or fact."""
    unknown = [c.rule for c in trial.criteria if c.rule not in RULES] + [f for f in trial.facts if f not in SUMMARIES]
    if unknown:
        raise ValueError(f"trial {trial.id} names unknown rules or facts: {', '.join(unknown)}")
    ids = [c.id for c in trial.criteria]
    if len(ids) != len(set(ids)):
        raise ValueError(f"trial {trial.id} repeats a criterion id")


def verdict(results: Iterable[CriterionResult]) -> str:
    results = list(results)
    if any(r.status == "fail" for r in results):
        return "not-eligible"
    if any(r.automated and r.status == "unknown" for r in results):
        return "needs-review"
    return "likely-eligible"


def evaluate_facts(trial: TrialDefinition, facts: PatientFacts) -> Evaluation:
    with derived_once():  # what the rules derive from the whole record, worked out once (rules.py)
        return _evaluate_facts(trial, facts)


def _evaluate_facts(trial: TrialDefinition, facts: PatientFacts) -> Evaluation:
    results = []
    notes = dict.fromkeys(facts.notes)  # the mappings' notes, then what each rule set aside (once each)
    for criterion in trial.criteria:
        outcome = RULES[criterion.rule](facts, criterion.params)
        notes.update(dict.fromkeys(outcome.notes))
        results.append(CriterionResult(
            id=criterion.id, type=criterion.type, automated=criterion.automated, label=criterion.label,
            status=outcome.status, reason=outcome.reason, evidence=list(outcome.evidence)))
    shown = {}
    for name in trial.facts:
        key, summarise = SUMMARIES[name]
        shown[key] = summarise(facts)
    return Evaluation(trial=trial.id, patient=facts.patient_ref, asOf=facts.as_of.isoformat(),
                      verdict=verdict(results), criteria=results, facts=shown, notes=list(notes))


def evaluate_resources(trial: TrialDefinition, resources: Iterable[object], as_of: date,
                       patient_id: str | None = None, notes: Iterable[str] = ()) -> Evaluation:
    """Plain-JSON resources (or (resource, fullUrl) pairs) of one patient → the evaluation object."""
    record = PatientRecord.from_resources(resources, patient_id=patient_id)
    for note in notes:
        record.add_note(note)
    facts = extract_facts(record, as_of)
    return evaluate_facts(trial, facts)
