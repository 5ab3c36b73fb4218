"""What a trial reads of a patient's record, derived from its CDS Hooks prefetch templates.

The screen must give the same evaluation as the hook, so it reads what the hook's prefetch reads and
nothing more: the same resource types, the same Observation codes, and the Medications the searches
``_include``. The same list gives a Bulk Data kick-off its ``_type`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from cds_service.criteria.models import TrialDefinition

# What an ``_include`` brings, by the element it follows: ``MedicationStatement:medication`` the
# Medication a statement points at; ``Observation:focus`` may point at any type, and the mappings
# follow it to BodyStructures (fhir_mappings/observations.py: the lesion measured) and Conditions
# (read whole anyway). A Medication names no patient (grouping joins it through the pointers); a
# BodyStructure names its patient, so all of a patient's BodyStructures are read.
# ``ResearchSubject:study`` the ResearchStudy a subject record names (no patient either).
INCLUDED_TYPES = {"medication": ("Medication",), "focus": ("BodyStructure",), "study": ("ResearchStudy",)}


@dataclass(frozen=True)
class TrialReads:
    """type → the ``system|code`` values searched for (None: every resource of the type)."""

    codes_by_type: dict[str, frozenset[str] | None]

    @classmethod
    def from_trial(cls, trial: TrialDefinition) -> TrialReads:
        codes_by_type: dict[str, frozenset[str] | None] = {}
        for template in trial.service.prefetch.values():
            path, _, query = template.partition("?")
            rtype = path.split("/")[0]
            params = parse_qs(query)
            wanted = frozenset(c for value in params.get("code", []) for c in value.split(","))
            codes_by_type[rtype] = _union(codes_by_type.get(rtype, frozenset()), wanted or None)
            for include in params.get("_include", []):
                element = include.split(":")[1] if ":" in include else ""
                for included in INCLUDED_TYPES.get(element, ()):
                    codes_by_type[included] = None
        return cls(codes_by_type)

    @property
    def resource_types(self) -> list[str]:
        """For ``_type``: every type read, in a stable order."""
        return sorted(self.codes_by_type)

    def wants(self, resource: dict) -> bool:
        rtype = resource.get("resourceType")
        if rtype not in self.codes_by_type:
            return False
        wanted = self.codes_by_type[rtype]
        return wanted is None or has_code(resource, wanted)


def _union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    return None if a is None or b is None else a | b


def has_code(resource: dict, wanted: frozenset[str]) -> bool:
    """A FHIR token search on ``code``: any coding of ``code`` is one of ``system|code`` wanted."""
    code = resource.get("code")
    if not isinstance(code, dict) or not isinstance(code.get("coding"), list):
        return False
    return any(isinstance(c, dict) and f"{c.get('system')}|{c.get('code')}" in wanted for c in code["coding"])
