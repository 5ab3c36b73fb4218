"""One patient's resources, indexed for the mappings, with the notes of what was left out.

A ``PatientRecord`` is built from plain JSON (prefetch bundles, search pages, a file). It decides
once, for every mapping, what is never evidence (entered-in-error, refuted, not-taken …), what is
not this patient's, and what is too broken to read; each of those is noted, none is fatal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from fhir_mappings.fhirjson import MalformedResource, NotUsable, ref_of, reference, status_code

T = TypeVar("T")

# The resource types the trial reads: notes speak only of these. What else a record holds (Coverage,
# Claim, ExplanationOfBenefit, Encounter, Immunization …) is simply not read, and saying so for each one
# would bury the notes a person needs.
READ_TYPES = frozenset({"Patient", "Condition", "Observation", "MedicationStatement", "MedicationRequest",
                        "MedicationAdministration", "Medication", "Procedure", "ImagingStudy", "DiagnosticReport",
                        "AdverseEvent", "BodyStructure", "ResearchSubject", "ServiceRequest"})
NEVER_EVIDENCE_STATUS = {"entered-in-error", "cancelled", "not-done", "draft", "not-taken"}
NEVER_EVIDENCE_VERIFICATION = {"refuted", "entered-in-error"}
SUBJECT_ELEMENTS = ("subject", "patient")


class PatientRecord:
    """Resources of one patient by type and by reference, plus notes on what was set aside."""

    def __init__(self) -> None:
        self.patient: dict | None = None
        self.by_type: dict[str, list[dict]] = defaultdict(list)
        self.by_ref: dict[str, dict] = {}
        self._notes: dict[str, str] = {}

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def from_resources(cls, resources: Iterable[object], patient_id: str | None = None) -> PatientRecord:
        record = cls()
        pending: list[tuple[dict, str | None]] = []
        for item in resources:
            if isinstance(item, tuple):
                resource, full_url = item
            else:
                resource, full_url = item, None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                record.note("A Bundle entry", "skipped: not a FHIR resource (no resourceType)")
                continue
            if resource["resourceType"] == "Patient" and (patient_id is None or resource.get("id") == patient_id):
                if record.patient is None:
                    record.patient = resource
                    record._index(resource, full_url)
                continue
            pending.append((resource, full_url))
        own_ids = record._patient_aliases(patient_id)
        # One canonical order, whatever order the sender used: a Bulk export, a paged search and a Bundle
        # list the same resources differently, and the evaluation object (evidence, drugs, notes, which
        # of two equal records a reason names) must be the same for all of them. Stable: duplicates of
        # one resource keep their order, so the first one sent is still the one indexed.
        pending.sort(key=_canonical_order)
        for resource, full_url in pending:
            record._add(resource, full_url, own_ids)
        return record

    def _patient_aliases(self, patient_id: str | None) -> set[str]:
        aliases: set[str] = set()
        pid = patient_id or (self.patient or {}).get("id")
        if pid:
            aliases.add(f"Patient/{pid}")
        for alias, resource in self.by_ref.items():
            if resource is self.patient:
                aliases.add(alias)
        return aliases

    def _add(self, resource: dict, full_url: str | None, own_ids: set[str]) -> None:
        ref = ref_of(resource)
        try:
            reason = _never_evidence(resource)
            if reason:
                self.note(ref, f"ignored: {reason}")
                return
            if own_ids and not _belongs_to(resource, own_ids):
                self.note(ref, "ignored: refers to another patient")
                return
        except MalformedResource as exc:
            self.note(ref, f"skipped as malformed: {exc}")
            return
        except (TypeError, AttributeError, KeyError):
            self.note(ref, "skipped as malformed")
            return
        self.by_type[resource["resourceType"]].append(resource)
        self._index(resource, full_url)

    def _index(self, resource: dict, full_url: str | None) -> None:
        self.by_ref.setdefault(ref_of(resource), resource)
        if full_url:
            self.by_ref.setdefault(full_url, resource)

    # --- reading ----------------------------------------------------------------------------

    @property
    def patient_ref(self) -> str | None:
        return ref_of(self.patient) if self.patient else None

    def resources(self, *types: str) -> Iterator[dict]:
        for rtype in types:
            yield from self.by_type.get(rtype, ())

    def resolve(self, ref: str | None, container: dict | None = None) -> dict | None:
        """A reference → the resource: ``#contained``, ``Type/id``, an absolute URL or a fullUrl."""
        if not ref:
            return None
        if ref.startswith("#") and container is not None:
            for contained in container.get("contained") or ():
                if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                    return contained
            return None
        if ref in self.by_ref:
            return self.by_ref[ref]
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2:
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            return self.by_ref.get("/".join(parts[-2:]))
        return None

    def canonical(self, ref: str, container: dict | None = None) -> str:
        """A reference as the facts name resources (``Type/id``): a ``urn:uuid:`` fullUrl or an absolute URL
        that resolves in this record becomes its resource's ``Type/id``; anything else stays as written
        (``Type/id`` of its last two path segments when it looks like one)."""
        target = self.resolve(ref, container)
        if target is not None and isinstance(target.get("resourceType"), str):
            return ref_of(target)
        parts = ref.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        return "/".join(parts[-2:]) if len(parts) >= 2 else ref

    def read_each(self, rtype: str, reader: Callable[[dict], Iterable[T]],
                  among: Iterable[dict] | None = None) -> list[T]:
        """Apply a reader to every resource of a type; a broken one is skipped and noted.

        ``among``: only these resources of the type, in this order (a reader's pre-selection of the
        resources it could read anything from); default: all of them.
        """
        found: list[T] = []
        for resource in self.by_type.get(rtype, ()) if among is None else among:
            try:
                found.extend(reader(resource))
            except NotUsable as exc:
                self.note(ref_of(resource), f"not used: {exc}")
            except MalformedResource as exc:
                self.note(ref_of(resource), f"skipped as malformed: {exc}")
            except (TypeError, AttributeError, KeyError, ValueError, IndexError):
                self.note(ref_of(resource), "skipped as malformed: unexpected structure")
        return found

    def note(self, ref: str, text: str) -> None:
        """One note per resource: the first reason it was set aside is the one reported. Resources of types
        the trial does not read are never noted."""
        rtype, slash, _ = ref.partition("/")
        if slash and rtype not in READ_TYPES:
            return
        self._notes.setdefault(ref, f"{ref} {text}")

    def add_note(self, text: str) -> None:
        self._notes.setdefault(text, text)

    @property
    def notes(self) -> list[str]:
        return list(self._notes.values())


def _canonical_order(item: tuple[dict, str | None]) -> tuple[str, str]:
    resource = item[0]
    return resource["resourceType"], str(resource.get("id") or "")


def _never_evidence(resource: dict) -> str | None:
    status = resource.get("status")
    if status is not None and not isinstance(status, str):
        raise MalformedResource("status should be a code")
    if status in NEVER_EVIDENCE_STATUS:
        return f"status {status}"
    if resource.get("doNotPerform") is True:
        return "a do-not-perform order (it forbids the treatment)"
    if resource["resourceType"] == "Condition":
        verification = status_code(resource, "verificationStatus")
        if verification in NEVER_EVIDENCE_VERIFICATION:
            return f"verification {verification}"
    return None


def _belongs_to(resource: dict, own_ids: set[str]) -> bool:
    """False only when the resource names a Patient that is not this one."""
    for element in SUBJECT_ELEMENTS:
        if element in resource:
            ref = reference(resource[element], element)
            if ref is None:
                return True
            if ref in own_ids:
                return True
            parts = ref.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "Patient":
                return f"Patient/{parts[-1]}" in own_ids
            return True
    return True


def resources_of_bundle(bundle: dict) -> Iterator[tuple[dict, str | None]]:
    """(resource, fullUrl) of every entry of a Bundle, searchsets and transactions alike.

    An entry that is not even an object is passed on as it is, so that ``PatientRecord`` notes it.
    """
    for entry in bundle.get("entry") or ():
        if not isinstance(entry, dict):
            yield entry, None
            continue
        if entry.get("resource") is None:
            continue
        full_url = entry.get("fullUrl")
        yield entry["resource"], full_url if isinstance(full_url, str) else None
