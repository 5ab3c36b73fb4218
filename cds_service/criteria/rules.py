"""Criterion rules: pure functions of (facts, params) → Outcome.

A trial definition names a rule and gives its parameters (windows, thresholds); the rule knows the
clinical logic. Time is ``facts.as_of`` and nothing else. Windows are inclusive: "within 90 days"
means the as-of date minus 90 days or later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from fhir_mappings.facts import Diagnosis, MedicationUse, PatientFacts, Reading

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    status: str  # pass | fail | unknown
    reason: str
    evidence: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # records this criterion set aside, and why (the evaluation's ``notes``)


Rule = Callable[[PatientFacts, dict[str, Any]], Outcome]
RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[name] = fn
        return fn
    return register


# --- small helpers -----------------------------------------------------------------------------

# While one evaluation runs (``evaluate_facts``), what the rules derive from the whole record (this
# cancer's Conditions, the PDAC diagnosis date, the chemotherapy start) is worked out once, not once per
# medication or reading: per item it made the rules' time grow with the square of the record. Rules never
# mutate the facts; outside ``derived_once()`` nothing is kept. The memo holds the facts object itself,
# so an id cannot be reused while it lives.
_DERIVED: ContextVar[dict[tuple[int, str], tuple[Any, Any]] | None] = ContextVar("rules_derived", default=None)


@contextmanager
def derived_once() -> Iterator[None]:
    token = _DERIVED.set({})
    try:
        yield
    finally:
        _DERIVED.reset(token)


def _once(facts: PatientFacts, compute: Callable[[PatientFacts], T]) -> T:
    """``compute(facts)``, once per facts object within ``derived_once()`` (callers must not mutate it)."""
    memo = _DERIVED.get()
    if memo is None:
        return compute(facts)
    key = (id(facts), compute.__name__)
    hit = memo.get(key)
    if hit is not None and hit[0] is facts:
        return hit[1]
    value = compute(facts)
    memo[key] = (facts, value)
    return value


def within(when: date | None, as_of: date, days: int) -> bool:
    return when is not None and as_of - timedelta(days=days) <= when <= as_of


def refs(items: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item.ref for item in items))


def newest(readings: Sequence[Reading], worst: Callable[[Reading], Any]) -> list[Reading]:
    """The readings of the latest date; the first one is the worst for the patient (ties)."""
    dated = [r for r in readings if r.date is not None]
    if not dated:
        return []
    latest = max(r.date for r in dated)
    return sorted((r for r in dated if r.date == latest), key=worst, reverse=True)


def day(when: date | None) -> str:
    return when.isoformat() if when else "undated"


CHEMOTHERAPY_LEAD_DAYS = 30  # a drug started up to 30 days before the PDAC's diagnosis date is for this cancer


def pdac_diagnosis_date(facts: PatientFacts) -> date | None:
    """The earliest onset of the PDAC Conditions, else (none has an onset) their earliest recordedDate."""
    onsets = [d.onset for d in facts.pdac if d.onset is not None]
    if onsets:
        return min(onsets)
    return min((d.recorded for d in facts.pdac if d.recorded is not None), default=None)


def this_cancer_refs(facts: PatientFacts) -> set[str]:
    """The PDAC Conditions and its metastases (liver, extrahepatic, unsited), less anything the Condition
    reader put among the other malignancies (a metastasis naming another primary)."""
    other = set(refs(facts.other_malignancies))
    ours = {d.ref for bucket in (facts.pdac, facts.liver_metastases, facts.extrahepatic_metastases,
                                 facts.unsited_metastases) for d in bucket}
    return ours - other


def other_cancers(facts: PatientFacts) -> list[Diagnosis]:
    """Every record of another malignancy, active or not: other primaries (and metastases naming them) and
    personal-history codes (Z85.x, "history of malignant neoplasm of …")."""
    return list(facts.other_malignancies) + list(getattr(facts, "malignancy_history", ()))


def other_cancer_refs(facts: PatientFacts) -> set[str]:
    """Conditions of another cancer (its primary, or a metastasis of it, or its history)."""
    return set(refs(other_cancers(facts))) - {d.ref for d in facts.pdac}


def for_this_cancer(use: MedicationUse, facts: PatientFacts) -> bool:
    """Is this anticancer drug given for the PDAC? Its ``reasonReference`` decides when it names the PDAC or
    one of its metastases (yes, whatever the date) or another cancer (never) — and so does a ``reasonCode``
    naming either (EHRs code the indication as often as they reference it); otherwise its start must be on
    or after 30 days before the PDAC diagnosis date (any start when that date is unknown)."""
    if set(use.reasons) & _once(facts, this_cancer_refs) or use.reason_cancer == "this":
        return True
    if set(use.reasons) & _once(facts, other_cancer_refs) or use.reason_cancer == "other":
        return False
    diagnosed = _once(facts, pdac_diagnosis_date)
    if diagnosed is None:
        return True
    return use.date is not None and use.date >= diagnosed - timedelta(days=CHEMOTHERAPY_LEAD_DAYS)


def chemotherapy_start(facts: PatientFacts) -> tuple[date | None, tuple[str, ...]]:
    """The earliest start of an anticancer drug given for this cancer, with the resources that give it."""
    return _once(facts, _chemotherapy_start)


def _chemotherapy_start(facts: PatientFacts) -> tuple[date | None, tuple[str, ...]]:
    # A cream or eye drop of an anticancer drug (fluorouracil cream for actinic keratoses) is not chemotherapy.
    counted = [m for m in facts.anticancer if m.local_route is None and for_this_cancer(m, facts)]
    dated = [m for m in counted if m.date is not None]
    if not dated:
        return None, refs(counted)
    start = min(m.date for m in dated)
    return start, refs(m for m in dated if m.date == start)


def about_this_cancer(reading: Reading, facts: PatientFacts) -> bool:
    """A reading without ``focus`` is about the patient's cancer; one whose focus names the PDAC or one of its
    metastases is too; one whose focus names only another cancer (its primary or a metastasis) is not."""
    if not reading.focus:
        return True
    focus = set(reading.focus)
    if focus & _once(facts, this_cancer_refs):
        return True
    return not focus & _once(facts, other_cancer_refs)


def age_in_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# --- Is a Condition active? (the spec's general rule) --------------------------------------------

ACTIVE, INACTIVE, STALE = "active", "inactive", "stale"


def activity(d: Diagnosis, as_of: date, visit_days: int | None) -> str:
    """``active`` / ``inactive`` / ``stale`` for one criterion.

    clinicalStatus decides when present; a status-less problem-list item is active; a status-less
    visit diagnosis is active when dated (onset, else recordedDate) within ``visit_days`` (None: whatever
    its age), else stale — an undated one cannot show it is recent, so it is stale too. A status-less
    Condition with an abatement date on or before the as-of date is over (FHIR requires an inactive
    status with an abatement; without one, the date still says it ended).
    """
    said = d.status_says
    if said is not None:
        return ACTIVE if said else INACTIVE
    if d.abated is not None and d.abated <= as_of:
        return INACTIVE
    if not d.visit_only or visit_days is None:
        return ACTIVE
    return ACTIVE if within(d.date, as_of, visit_days) else STALE


def split_by_activity(items: Iterable[Diagnosis], as_of: date,
                      visit_days: int | None) -> tuple[list[Diagnosis], list[Diagnosis]]:
    """(active, stale) — inactive ones are left out."""
    active: list[Diagnosis] = []
    stale: list[Diagnosis] = []
    for d in items:
        state = activity(d, as_of, visit_days)
        if state == ACTIVE:
            active.append(d)
        elif state == STALE:
            stale.append(d)
    return active, stale


def stale_note(d: Diagnosis, visit_days: int, what: str) -> str:
    return (f"{d.ref} visit diagnosis from {day(d.date)} without status: not counted as active "
            f"({what}: only within {visit_days} days)")


def why_active(d: Diagnosis, visit_days: int | None) -> str:
    if d.status_says is None and d.visit_only:
        window = f", within {visit_days} days" if visit_days is not None else ""
        return f"visit diagnosis of {day(d.date)} without status{window}"
    return d.clinical_status or "problem-list item without status"


def last_recorded(items: Iterable[Diagnosis]) -> list[tuple[str, str]]:
    """(label, newest date written) per distinct label: a visit diagnosis is often repeated on many visits."""
    newest_by_label: dict[str, date | None] = {}
    for d in items:
        when = max((x for x in (d.recorded, d.onset) if x is not None), default=None)
        known = newest_by_label.get(d.label)
        if d.label not in newest_by_label or (when is not None and (known is None or when > known)):
            newest_by_label[d.label] = when
    return [(label, day(when)) for label, when in newest_by_label.items()]


def tentative_reason(items: Iterable[Diagnosis], confirm: str) -> str:
    """Why an exclusion that only unconfirmed Conditions show asks instead of failing."""
    labels = "; ".join(dict.fromkeys(f"{d.label} ({d.verification})" for d in items))
    return f"{labels}, not confirmed: {confirm}"


def in_years(days: int) -> str:
    return f"{days // 365} years" if days % 365 == 0 else f"{days} days"


# --- inclusion ---------------------------------------------------------------------------------

@rule("alive")
def alive(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    """A deceased patient is never a candidate; a death dated after the as-of date has not happened yet."""
    evidence = (facts.patient_ref,) if facts.patient_ref else ()
    if facts.deceased_unreadable:
        return Outcome("unknown", "Patient.deceasedDateTime is not a readable date: confirm the patient is alive",
                       evidence)
    if facts.deceased_on is not None:
        if facts.deceased_on <= facts.as_of:
            return Outcome("fail", f"deceased on {day(facts.deceased_on)}", evidence)
        note = (f"{facts.patient_ref or 'Patient'} deceasedDateTime {day(facts.deceased_on)} is after the as-of "
                "date: ignored")
        return Outcome("pass", "no death recorded on or before the as-of date", evidence, notes=(note,))
    if facts.deceased:
        return Outcome("fail", "deceased (Patient.deceasedBoolean true; no date recorded)", evidence)
    return Outcome("pass", "no death recorded", evidence)


@rule("adult")
def adult(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    minimum = params.get("minimum_years", 18)
    evidence = (facts.patient_ref,) if facts.patient_ref else ()
    if facts.birth_date is None:
        return Outcome("unknown", "no birth date recorded", evidence)
    years = age_in_years(facts.birth_date, facts.as_of)
    status = "pass" if years >= minimum else "fail"
    return Outcome(status, f"age {years} (born {facts.birth_date.isoformat()})", evidence)


@rule("pdac_diagnosis")
def pdac_diagnosis(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    confirmed = [d for d in facts.pdac if d.confirmed]
    if confirmed:
        return Outcome("pass", f"{confirmed[0].label} (since {day(confirmed[0].date)})", refs(confirmed))
    if facts.pdac:
        first = facts.pdac[0]
        return Outcome("unknown", f"{first.label} is {first.verification}, not confirmed: the study team must "
                                  "confirm the diagnosis", refs(facts.pdac))
    if facts.pancreatic_non_ductal:
        first = facts.pancreatic_non_ductal[0]
        return Outcome("fail", f"pancreatic tumour is not ductal: {first.label}", refs(facts.pancreatic_non_ductal))
    return Outcome("fail", "no pancreatic ductal adenocarcinoma recorded")


def _liver_metastases_counted(facts: PatientFacts) -> list[Diagnosis]:
    """Liver metastases that pass the gate: active, status-less (any age, any kind) or in remission."""
    return [d for d in facts.liver_metastases if d.status_says is not False or d.clinical_status == "remission"]


def metastasis_timing(facts: PatientFacts, synchronous_days: int = 183) -> dict[str, Any]:
    """Synchronous when the liver metastasis appeared ≤ N days after the PDAC, else metachronous."""
    pdac_onset = min((d.date for d in facts.pdac if d.date), default=None)
    counted = _liver_metastases_counted(facts) or facts.liver_metastases
    liver_onset = min((d.date for d in counted if d.date), default=None)
    if pdac_onset is None or liver_onset is None:
        timing = "unknown"
    else:
        timing = "synchronous" if (liver_onset - pdac_onset).days <= synchronous_days else "metachronous"
    return {"timing": timing, "pdacOnset": pdac_onset and pdac_onset.isoformat(),
            "liverMetastasisOnset": liver_onset and liver_onset.isoformat()}


@rule("liver_metastases")
def liver_metastases(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    """The gate. Like the PDAC, history counts: an old status-less liver metastasis still passes."""
    if not facts.liver_metastases:
        return Outcome("fail", "no liver metastasis recorded")
    timing = metastasis_timing(facts, params.get("synchronous_days", 183))["timing"]
    current = [d for d in facts.liver_metastases if d.status_says is not False]
    if current:
        return Outcome("pass", f"{current[0].label} (since {day(current[0].date)}; {timing})", refs(current))
    remission = [d for d in facts.liver_metastases if d.clinical_status == "remission"]
    if remission:
        return Outcome("pass", f"{remission[0].label}: in remission after treatment (since {day(remission[0].date)}; "
                               f"{timing})", refs(remission))
    latest = max(facts.liver_metastases, key=lambda d: d.abated or d.recorded or d.date or date.min)
    resolved_on = day(latest.abated or latest.recorded or latest.date)
    return Outcome("unknown", f"{latest.label} recorded as {latest.clinical_status} on {resolved_on}: confirm "
                              "whether liver disease remains", refs(facts.liver_metastases))


@rule("liver_lesions_limited")
def liver_lesions_limited(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    lesions = latest_liver_assessment(facts, params)
    if lesions is None:
        return Outcome("unknown", f"no liver lesion measurement in the last {params['window_days']} days")
    count = len(lesions)
    largest = max(m.diameter_mm for m in lesions.values())
    evidence = refs(lesions.values())
    described = f"{count} liver lesion{'s' if count != 1 else ''}, largest {largest:g} mm"
    if count > params["max_lesions"] or largest >= params["max_diameter_mm"]:
        return Outcome("fail", f"{described} (limit: {params['max_lesions']} lesions, < {params['max_diameter_mm']} mm)",
                       evidence)
    resect = sum(1 for m in lesions.values() if m.diameter_mm >= params.get("resection_from_mm", 20))
    hint = f"; {resect} ≥ {params.get('resection_from_mm', 20)} mm need resection, not ablation" if resect else ""
    return Outcome("pass", described + hint, evidence)


def latest_liver_assessment(facts: PatientFacts, params: dict[str, Any]) -> dict | None:
    """Lesion → newest measurement, within ``assessment_days`` of the newest one (itself recent)."""
    dated = [m for m in facts.liver_lesions if m.date is not None]
    if not dated:
        return None
    newest_day = max(m.date for m in dated)
    if not within(newest_day, facts.as_of, params["window_days"]):
        return None
    lesions: dict[str, Any] = {}
    # Date order, so a lesion keeps its newest value; on the same day the largest (worst) comes last.
    for m in sorted(dated, key=lambda m: (m.date, m.diameter_mm)):
        if within(m.date, newest_day, params["assessment_days"]):
            lesions[m.lesion] = m
    return lesions


@rule("performance_status")
def performance_status(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    window = params["window_days"]
    recent = [r for r in facts.performance if within(r.date, facts.as_of, window)]
    latest = newest(recent, worst=lambda r: r.value)
    if not latest:
        older = bool(facts.performance)
        return Outcome("unknown", f"no performance status in the last {window} days"
                       + (" (only older ones)" if older else ""), refs(facts.performance))
    reading = latest[0]
    reason = f"{reading.label} on {day(reading.date)}"
    if reading.value <= 1:
        return Outcome("pass", reason, (reading.ref,))
    if reading.value == 2:
        return Outcome("unknown", reason + ": the registry text is inconsistent for ECOG 2 (inclusion 0–1, "
                                           "exclusion > 2); the study team decides", (reading.ref,))
    return Outcome("fail", reason, (reading.ref,))


@rule("resectable_primary")
def resectable_primary(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    resected = [p for p in facts.procedures if p.kind == "pancreatic-resection" and p.status == "completed"]
    if resected:
        return Outcome("pass", f"primary already resected: {resected[0].label} ({day(resected[0].date)})",
                       refs(resected))
    counted = [r for r in facts.unresectable if _about_the_pancreatic_primary(r, facts)]
    if counted:
        first = counted[0]
        return Outcome("fail", f"evidence against resectability of the pancreatic primary: {first.label}"
                               f" ({day(first.date)})", refs(counted))
    notes = tuple(f"{r.ref} not counted against resectability: {_why_not_the_primary(r, facts)}"
                  for r in facts.unresectable)
    return Outcome("unknown", "resectability of the primary is a tumour-board decision", (), notes)


def _about_the_pancreatic_primary(reading: Reading, facts: PatientFacts) -> bool:
    """A T4 / arterial involvement counts only when it is the PDAC's: its ``focus`` is a PDAC Condition, or —
    without focus — the record holds no other malignancy (active or not) and it is dated on or after the
    PDAC diagnosis (an older one, or one that may be another cancer's, says nothing about this primary)."""
    if reading.focus:
        return bool(set(reading.focus) & _once(facts, _pdac_refs))
    diagnosed = _once(facts, pdac_diagnosis_date)
    return (not facts.other_malignancies and not getattr(facts, "malignancy_history", ()) and diagnosed is not None and reading.date is not None
            and reading.date >= diagnosed)


def _pdac_refs(facts: PatientFacts) -> set[str]:
    return {d.ref for d in facts.pdac}


def _why_not_the_primary(reading: Reading, facts: PatientFacts) -> str:
    if reading.focus:
        return "its focus is not the pancreatic cancer"
    if other_cancers(facts):
        return "it names no focus and the record holds another malignancy"
    if reading.date is None:
        return "undated, without a focus"
    return f"dated {day(reading.date)}, before the pancreatic cancer was diagnosed"


@rule("clinician_judgement")
def clinician_judgement(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    return Outcome("unknown", params.get("reason", "a clinician confirms this at screening"))


# --- exclusion ---------------------------------------------------------------------------------

PROGRESSION_ORDER = {"progression": 3, "undetermined": 2, "stable": 1, "improved": 0, "remission": 0}


@rule("no_progression_on_chemotherapy")
def no_progression_on_chemotherapy(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    start, start_refs = chemotherapy_start(facts)
    if start is None:
        return Outcome("unknown", "no chemotherapy recorded: response not yet assessable", start_refs)
    since = [r for r in facts.disease_status
             if r.date is not None and r.date >= start and about_this_cancer(r, facts)]
    latest = newest(since, worst=lambda r: PROGRESSION_ORDER.get(r.value, 2))
    if not latest:
        return Outcome("unknown", f"no disease status since chemotherapy started on {day(start)}", start_refs)
    reading = latest[0]
    reason = f"{reading.label} on {day(reading.date)} (chemotherapy since {day(start)})"
    evidence = (reading.ref,) + start_refs
    if reading.value == "progression":
        return Outcome("fail", reason, evidence)
    if reading.value == "undetermined":
        return Outcome("unknown", reason, evidence)
    return Outcome("pass", reason, evidence)


@rule("no_extrahepatic_metastases")
def no_extrahepatic_metastases(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    visit_days = params.get("visit_diagnosis_days", 365)
    active, stale = split_by_activity(facts.extrahepatic_metastases, facts.as_of, visit_days)
    confirmed = [d for d in active if d.confirmed]
    if confirmed:
        first = confirmed[0]
        return Outcome("fail", f"metastasis outside the liver: {first.label} ({why_active(first, visit_days)})",
                       refs(confirmed))
    if active:  # only provisional / differential ones: a suspicion asks, it does not exclude
        return Outcome("unknown", tentative_reason(active, "confirm whether there is a metastasis outside the liver"),
                       refs(active))
    if stale:
        named = "; ".join(f"{label} last recorded {when}" for label, when in last_recorded(stale))
        return Outcome("unknown", f"{named} (visit diagnosis without status, older than {visit_days} days): "
                                  "confirm there is no metastasis outside the liver", refs(stale))
    window = params["imaging_window_days"]
    recent = [i for i in facts.imaging if within(i.date, facts.as_of, window) and _cross_sectional(i.modalities)]
    if recent:
        latest = max(recent, key=lambda i: i.date)
        return Outcome("pass", f"none recorded; {'/'.join(_cross_sectional(latest.modalities))} on "
                               f"{day(latest.date)}", refs(recent))
    return Outcome("unknown", f"none recorded, but extrahepatic disease is not ruled out by CT, MR or PET in the "
                              f"last {window} days")


def _cross_sectional(modalities: tuple[str, ...]) -> list[str]:
    return [m for m in modalities if m in ("CT", "MR", "PT")]


@rule("no_other_malignancy")
def no_other_malignancy(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    """Active, or diagnosed within the window → fail; what the record cannot date or place in time → unknown.

    A stale status-less visit diagnosis and a personal-history code (Z85.x) never fail on their own: an
    old visit says neither that the cancer is active nor that it is over.
    """
    window = params["window_days"]
    visit_days = params.get("visit_diagnosis_days", window)
    blocking: list[Diagnosis] = []
    stale: list[Diagnosis] = []
    over = _recorded_as_over(facts, window)
    for d in facts.other_malignancies:
        state = activity(d, facts.as_of, visit_days)
        if d.visit_only and d.label.lower() in over:
            stale.append(d)  # a recent visit diagnosis of a cancer the problem list says is over: ask
        elif state == ACTIVE or within(d.date, facts.as_of, window):
            blocking.append(d)
        elif state == STALE:
            stale.append(d)
    confirmed = [d for d in blocking if d.confirmed]
    if confirmed:
        first = confirmed[0]
        if activity(first, facts.as_of, visit_days) == ACTIVE:
            why = why_active(first, visit_days)
        else:
            why = f"diagnosed {day(first.date)}, within {window} days"
        return Outcome("fail", f"other malignancy: {first.label} ({why})", refs(confirmed))
    if blocking:  # only provisional / differential ones
        return Outcome("unknown", tentative_reason(blocking, "confirm whether there is another malignancy"),
                       refs(blocking))
    # A history code is enough only when its onset shows the cancer is older than the window.
    history_open = [d for d in facts.malignancy_history
                    if d.onset is None or within(d.onset, facts.as_of, window)]
    if stale or history_open:
        asks = "; ".join(f"confirm the {label} last recorded {when} is not active and was diagnosed more than "
                         f"{in_years(window)} ago" for label, when in last_recorded(stale + history_open))
        return Outcome("unknown", asks, refs(stale + history_open))
    earlier = facts.other_malignancies + facts.malignancy_history
    if earlier:
        return Outcome("pass", f"only earlier, inactive malignancies (over {window} days)", refs(earlier))
    return Outcome("pass", "no other malignancy recorded")


def _recorded_as_over(facts: PatientFacts, window: int) -> set[str]:
    """Labels of other cancers recorded with an inactive / resolved / remission status and not diagnosed within
    the window. A status-less visit diagnosis of the same cancer (survivorship visits are often coded with
    the cancer's own code) then contradicts that record: the rule asks instead of excluding."""
    return {d.label.lower() for d in facts.other_malignancies + facts.malignancy_history
            if d.status_says is False and not within(d.onset, facts.as_of, window)}


@rule("no_recent_major_surgery")
def no_recent_major_surgery(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    window = params["window_days"]
    recent = [p for p in facts.procedures
              if p.kind == "major" and p.status == "completed" and within(p.date, facts.as_of, window)]
    if recent:
        return Outcome("fail", f"{recent[0].label} on {day(recent[0].date)} (within {window} days)", refs(recent))
    return Outcome("pass", f"no major surgery in the last {window} days")


@rule("no_active_condition")
def no_active_condition(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    """An active condition of the kind → unknown ("confirm …"); none → pass.

    ``visit_diagnosis_days``: how recent a status-less visit diagnosis must be to count (absent / null:
    whatever its age, for chronic conditions). Older ones are ignored and noted (acute conditions).
    """
    visit_days = params.get("visit_diagnosis_days")
    active, stale = split_by_activity(getattr(facts, params["facts"]), facts.as_of, visit_days)
    notes = tuple(stale_note(d, visit_days, params["what"]) for d in stale) if visit_days is not None else ()
    if active:
        labels = "; ".join(dict.fromkeys(d.label for d in active))
        return Outcome("unknown", f"{params['what']}: {labels} — {params['confirm']}", refs(active), notes)
    return Outcome("pass", f"no {params['what']} recorded", (), notes)


@rule("no_current_immunosuppressant")
def no_current_immunosuppressant(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    window = params["window_days"]
    # Local use (eye drops, ointment …) does not suppress the immune system; the mapping noted each one.
    systemic = [m for m in facts.immunosuppressants if m.local_route is None]
    current = [m for m in systemic if _current(m, facts.as_of, window)]
    if current:
        names = ", ".join(dict.fromkeys(d for m in current for d in m.drugs))
        return Outcome("fail", f"current immunosuppressant: {names}", refs(current))
    steroids = ", ".join(dict.fromkeys(d for m in facts.corticosteroids for d in m.drugs))
    allowed = f" (corticosteroids allowed: {steroids})" if steroids else ""
    # Relied on: the earlier (no longer current) immunosuppressants and the corticosteroids it names.
    local = [m for m in facts.immunosuppressants if m.local_route is not None and _current(m, facts.as_of, window)]
    topical = f" (local use only: {', '.join(dict.fromkeys(d for m in local for d in m.drugs))})" if local else ""
    return Outcome("pass", "no current systemic immunosuppressant" + topical + allowed,
                   refs(facts.immunosuppressants) + refs(facts.corticosteroids))


def _current(use: MedicationUse, as_of: date, window: int) -> bool:
    if use.resource_type != "MedicationAdministration" and use.status in ("active", "intended", "on-hold"):
        return True
    if use.start is not None and use.start <= as_of and (use.ongoing or (use.end is not None and use.end >= as_of)):
        return True
    return within(use.last_date, as_of, window)


@rule("neuropathy_below_grade")
def neuropathy_below_grade(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    failing = params["failing_grade"]
    visit_days = params.get("visit_diagnosis_days", 365)
    active, stale = split_by_activity(facts.neuropathies, facts.as_of, visit_days)
    graded = [d for d in active if d.grade is not None]
    worst = max((d for d in graded if d.confirmed), key=lambda d: d.grade, default=None)
    if worst is not None and worst.grade >= failing:
        return Outcome("fail", f"{worst.label}, grade {worst.grade}", refs(active))
    tentative = [d for d in graded if d.grade >= failing]  # failing grades only provisional / differential
    if tentative:
        return Outcome("unknown", tentative_reason(tentative, f"confirm whether a neuropathy of grade {failing} or "
                                                              "worse is present"), refs(active))
    worst = max(graded, key=lambda d: d.grade, default=None)
    if len(graded) < len(active):
        return Outcome("unknown", "peripheral neuropathy without a recorded grade: grade it at screening",
                       refs(active))
    # A stale visit diagnosis can ask, never exclude: only when it is ungraded or of a failing grade.
    asking = [d for d in stale if d.grade is None or d.grade >= failing]
    if asking:
        named = "; ".join(f"{label} last recorded {when}" for label, when in last_recorded(asking))
        return Outcome("unknown", f"{named} (visit diagnosis without status, older than {visit_days} days): "
                                  f"confirm whether a neuropathy of grade {failing} or worse remains",
                       refs(active + asking))
    if active:
        return Outcome("pass", f"peripheral neuropathy grade {worst.grade}", refs(active))
    if stale:
        return Outcome("pass", "only an earlier mild peripheral neuropathy", refs(stale))
    return Outcome("pass", "no active peripheral neuropathy recorded")


@rule("not_pregnant_or_breastfeeding")
def not_pregnant_or_breastfeeding(facts: PatientFacts, params: dict[str, Any]) -> Outcome:
    if facts.gender == "male":
        return Outcome("pass", "male patient")
    window = params["window_days"]
    condition_days = params.get("condition_days", window)
    status = newest([r for r in facts.pregnancy_status if within(r.date, facts.as_of, window)],
                    worst=lambda r: r.value == "pregnant")
    if status and status[0].value == "pregnant":
        return Outcome("fail", f"pregnant ({day(status[0].date)})", (status[0].ref,))
    conditions, notes = _current_pregnancy_conditions(facts, condition_days)
    confirmed = [d for d in conditions if d.confirmed]
    if confirmed:
        return Outcome("fail", f"pregnancy: {confirmed[0].label} ({day(confirmed[0].date)})", refs(confirmed),
                       notes)
    feeding = newest([r for r in facts.breastfeeding if within(r.date, facts.as_of, window)],
                     worst=lambda r: r.value is True)
    if feeding and feeding[0].value is True:
        return Outcome("fail", f"breastfeeding ({day(feeding[0].date)})", (feeding[0].ref,), notes)
    if conditions:  # only provisional / differential pregnancy Conditions
        return Outcome("unknown", tentative_reason(conditions, "confirm whether the patient is pregnant"),
                       refs(conditions), notes)
    evidence = tuple(r.ref for r in (status[:1] + feeding[:1]))
    return Outcome("pass", "not pregnant or breastfeeding as far as recorded", evidence, notes)


def _current_pregnancy_conditions(facts: PatientFacts, days: int) -> tuple[list[Diagnosis], tuple[str, ...]]:
    """Pregnancy Conditions that still say "pregnant": dated within ``days``, active or status-less, and not
    contradicted by a newer pregnancy-status Observation saying not pregnant. The others are noted."""
    current: list[Diagnosis] = []
    notes: list[str] = []
    not_pregnant = [r for r in facts.pregnancy_status if r.value == "not-pregnant" and r.date is not None]
    for d in facts.pregnancy_conditions:
        if activity(d, facts.as_of, None) == INACTIVE:
            continue  # resolved, or status-less with an abatement (the pregnancy ended)
        if d.date is None:
            notes.append(f"{d.ref} pregnancy without a date: ignored (counts only within {days} days)")
            continue
        if not within(d.date, facts.as_of, days):
            notes.append(f"{d.ref} pregnancy recorded {day(d.date)}, older than {days} days: ignored")
            continue
        newer = [r for r in not_pregnant if r.date > d.date]
        if newer:
            latest = max(newer, key=lambda r: r.date)
            notes.append(f"{d.ref} pregnancy recorded {day(d.date)}: ignored, a newer pregnancy status "
                         f"({latest.ref}, {day(latest.date)}) says not pregnant")
            continue
        current.append(d)
    return current, tuple(notes)
