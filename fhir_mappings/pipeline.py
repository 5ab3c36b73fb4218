"""Is the patient already in the study's pipeline? FHIR JSON → a short reason, or None. Pure.

CDS contract ("Feedback, and when a card is not shown again"): no card for a patient who has

* a **ResearchSubject** for the study, in any status — the study named by its identifier
  (``ResearchSubject.study.identifier``) or by a reference to a ResearchStudy in the record that
  carries that identifier; or
* an **active referral to the study team**: a ``ServiceRequest`` with ``status`` ``active`` whose
  ``performer`` references the deployment's study team (``TRIALCDS_STUDY_TEAM_REFERENCE``).
  Without that setting no referral can be recognised, and only ResearchSubjects count.

The resources are the ones gathered for the patient (``ResearchSubject?patient=…`` with its study, and
``ServiceRequest?patient=…`` prefetch — status is read here: a status search parameter is outside the CDS Hooks query subset, or the same searches on the FHIR server).
Malformed entries are skipped: they can only fail to hide a card, never hide one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

IN_STUDY = "in-pipeline:research-subject"
REFERRED = "in-pipeline:referred-to-study-team"


def pipeline_reason(resources: Iterable[Any], study_system: str, study_value: str,
                    study_team_reference: str | None) -> str | None:
    """``IN_STUDY`` or ``REFERRED`` (for the log line), or None when the patient is not in the pipeline.

    ``resources``: plain-JSON resources, or (resource, fullUrl) pairs as the record gathering yields."""
    items = [r[0] if isinstance(r, tuple) else r for r in resources]
    items = [r for r in items if isinstance(r, Mapping)]
    # A ResearchSubject may name its study by reference; the study's identifier is then on the
    # ResearchStudy (brought along by the prefetch's _include=ResearchSubject:study).
    studies = {f"ResearchStudy/{r['id']}" for r in items
               if r.get("resourceType") == "ResearchStudy" and isinstance(r.get("id"), str)
               and _names_study(r.get("identifier"), study_system, study_value)}
    team = _local(study_team_reference) if study_team_reference else None
    for resource in items:
        kind = resource.get("resourceType")
        if kind == "ResearchSubject" and _for_study(resource.get("study"), studies, study_system, study_value):
            return IN_STUDY
        if kind == "ServiceRequest" and team and resource.get("status") == "active" \
                and any(_local(_reference(p)) == team for p in _list(resource.get("performer"))):
            return REFERRED
    return None


def _for_study(study: Any, known_studies: set[str], system: str, value: str) -> bool:
    if not isinstance(study, Mapping):
        return False
    if _names_study([study.get("identifier")], system, value):
        return True
    reference = _reference(study)
    return reference is not None and _local(reference) in known_studies


def _names_study(identifiers: Any, system: str, value: str) -> bool:
    return any(isinstance(i, Mapping) and i.get("system") == system and i.get("value") == value
               for i in _list(identifiers))


def _reference(value: Any) -> str | None:
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return ref if isinstance(ref, str) and ref else None


def _local(reference: str | None) -> str | None:
    """``https://ehr/fhir/PractitionerRole/7/_history/2`` → ``PractitionerRole/7``: the same target,
    however the EHR spells it."""
    if not reference:
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
