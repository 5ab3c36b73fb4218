"""Runs a trial's rules over a patient's facts and decides the verdict."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
    if sum(len(found) for found in record.by_type.values()) < LARGE_RECORD:
        return evaluate_facts(trial, extract_facts(record, as_of))
    with cyclic_gc_paused():
        return evaluate_facts(trial, extract_facts(record, as_of))


# Reading a record of thousands of resources allocates hundreds of thousands of objects that live until
# the evaluation ends (the read memo, the facts); CPython's cyclic collector then runs again and again,
# each time traversing young lists as long as the record, and once over the whole record: a third of
# the time at 10 000 resources, and a time per resource that grew with the record. The evaluation makes
# no reference cycles of its own (refcounting frees what it drops), so for a large record the collector
# waits until the evaluation ends. Hook calls' records (tens to a few hundred resources) are unaffected.
LARGE_RECORD = 1_000
_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for this block (nested and concurrent blocks share one pause;
    it is switched back on, if it was on, when the last one ends)."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()
