"""Resources → one patient's record at a time, in bounded memory.

Three steps, each a function a worker process (or a Spark executor) can run on its own share:

1. ``partition_chunk``: each line of a chunk of the input is parsed once, kept only if the trial reads
   it (``reads.TrialReads``), and appended — as ``patient-id TAB original-line`` — to one of N
   partition files chosen by a stable hash of the patient id (crc32, the same in every process).
   A Medication (or a ResearchStudy: ``SHARED_TYPES``) names no patient: it goes to a shared
   partition keyed by its reference, and each resource that points at one leaves a
   ``Medication/id TAB patient-id`` line beside it.
2. ``join_medications``: per shared partition, its Medications are held (a drug catalogue, small)
   and the pointer lines streamed: each Medication is copied into the partition of each patient
   that points at it.
3. ``patients_of_partition``: one partition is read into memory and split by patient, sorted by id.

Memory is bounded by one partition (the input size / N, N grows with the input) plus one patient,
never by the population.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from cds_service.screening.inputs import Chunk, describe, read_chunk
from cds_service.screening.issues import InputIssues
from cds_service.screening.reads import TrialReads

PARTITION_BYTES = 48 * 1024 * 1024  # input bytes per partition (most of the input is not read by the trial)
MAX_PARTITIONS = 1024
# Where a resource names its patient (ResearchSubject: ``individual``, what its ``patient`` search reads).
SUBJECT_ELEMENTS = ("subject", "patient", "individual")
# Resources that name no patient, read through the references pointing at them (what the prefetch's
# ``_include=…:medication`` and ``_include=ResearchSubject:study`` bring): type → the elements of
# other resources that point at one.
SHARED_TYPES = {"Medication": ("medicationReference",), "ResearchStudy": ("study",)}
POINTER_ELEMENTS = tuple(dict.fromkeys(e for elements in SHARED_TYPES.values() for e in elements))


PATIENTS_SEEN = "patient-resources"  # a count kept beside the issues, never reported as one


def partition_count(input_bytes: int, workers: int) -> int:
    """Enough partitions that one fits comfortably in memory, and at least two per worker."""
    return max(2 * workers, min(MAX_PARTITIONS, input_bytes // PARTITION_BYTES + 1))


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % partitions


class Route(NamedTuple):  # a tuple: one is made for every line of the export
    """Where a resource goes: to a patient, or (a shared resource) to those who point at it."""

    patient: str | None
    # "Type/id" when the resource is one of SHARED_TYPES (a Medication, a ResearchStudy): it names no
    # patient and goes to every patient whose resources point at it. (The name predates ResearchStudy.)
    medication: str | None = None
    points_at: tuple[str, ...] = ()  # "Type/id" references to SHARED_TYPES this resource holds


def route(resource: dict) -> Route:
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    if rtype == "Patient":
        return Route(rid if isinstance(rid, str) and rid and "\t" not in rid else None)
    if rtype in SHARED_TYPES:
        return Route(None, f"{rtype}/{rid}" if isinstance(rid, str) and rid and "\t" not in rid else None)
    patient = None
    for element in SUBJECT_ELEMENTS:
        value = resource.get(element)
        if value is not None:
            patient = patient_id_of(_reference(value))
            if patient:
                break
    pointers: tuple[str, ...] = ()
    for element in POINTER_ELEMENTS:  # this runs for every line: only elements present cost anything
        value = resource.get(element)
        if value is not None:
            ref = _shared_ref(_reference(value))
            if ref:
                pointers += (ref,)
    return Route(patient, None, pointers)


def _reference(value: object) -> str | None:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            return ref
    return None


def _type_and_id(ref: str | None) -> tuple[str, str] | None:
    """``Type/id``, ``http://server/fhir/Type/id`` and ``Type/id/_history/n`` → (Type, id)."""
    if not ref or ref.startswith("#"):
        return None
    parts = ref.rstrip("/").split("/")
    if len(parts) == 2:  # the usual "Type/id", quickly
        return (parts[0], parts[1]) if parts[1] else None
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-1]:
        return None
    return parts[-2], parts[-1]


def patient_id_of(ref: str | None) -> str | None:
    found = _type_and_id(ref)
    return found[1] if found and found[0] == "Patient" and "\t" not in found[1] else None


def _shared_ref(ref: str | None) -> str | None:
    found = _type_and_id(ref)
    return f"{found[0]}/{found[1]}" if found and found[0] in SHARED_TYPES and "\t" not in found[1] else None


# --- 1. partition -------------------------------------------------------------------------------

WRITE_BUFFERS_BYTES = 1024 * 1024  # all of one writer's file buffers together


class _Writers:
    """Append-only files opened on first use, in a folder per partition (one file per chunk). The
    buffers share a fixed budget: a thousand partitions must not mean a thousand large buffers."""

    def __init__(self, root: Path, prefix: str, chunk_name: str, partitions: int) -> None:
        self.root, self.prefix, self.chunk_name = root, prefix, chunk_name
        self.buffer = max(4096, min(256 * 1024, WRITE_BUFFERS_BYTES // max(1, partitions)))
        self.open_files: dict[int, IO[bytes]] = {}

    def write(self, partition: int, key: str, line: bytes) -> None:
        f = self.open_files.get(partition)
        if f is None:
            folder = self.root / f"{self.prefix}{partition:04d}"
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            f = self.open_files[partition] = open(folder / self.chunk_name, "wb", buffering=self.buffer)
        f.write(key.encode("utf-8") + b"\t" + (line if line.endswith(b"\n") else line + b"\n"))

    def close(self) -> None:
        for f in self.open_files.values():
            f.close()


def partition_chunk(chunk: Chunk, index: int, reads: TrialReads, workdir: Path, partitions: int) -> InputIssues:
    """Step 1 for one chunk; returns what could not be used."""
    issues = InputIssues()
    name = f"c{index:06d}.tsv"
    patients = _Writers(workdir / "parts", "p", name, partitions)
    medications = _Writers(workdir / "meds", "m", name, partitions)
    pointers = _Writers(workdir / "medrefs", "m", name, partitions)
    not_read = patient_resources = 0
    try:
        for at, line in read_chunk(chunk, issues):
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError:
                resource = None
            if type(resource) is not dict or type(resource.get("resourceType")) is not str:
                issues.add("malformed-line", describe(chunk, at))
                continue
            if not reads.wants(resource):
                not_read += 1
                continue
            try:
                to = route(resource)
            except (TypeError, AttributeError, ValueError):
                to = Route(None)
            if to.medication:
                medications.write(partition_of(to.medication, partitions), to.medication, line)
            elif to.patient:
                if resource["resourceType"] == "Patient":
                    patient_resources += 1
                patients.write(partition_of(to.patient, partitions), to.patient, line)
                # One line per pointer: a patient's second prescription of a drug brings the drug
                # twice, and screen_patient keeps one (cheaper than remembering pairs here).
                for ref in to.points_at:
                    pointers.write(partition_of(ref, partitions), ref, to.patient.encode("utf-8"))
            else:
                issues.add("resource-without-patient", f"{describe(chunk, at)}: {resource['resourceType']}")
        issues.add("not-read-by-trial", n=not_read)
        issues.add(PATIENTS_SEEN, n=patient_resources)  # for the ETA of the evaluation; not an issue
    finally:
        patients.close()
        medications.close()
        pointers.close()
    return issues


# --- 2. join Medications ------------------------------------------------------------------------

def _lines(folder: Path) -> Iterator[tuple[str, bytes]]:
    """(key, rest) of every line of every file in a partition folder, files in name order."""
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        with open(path, "rb") as f:
            for line in f:
                key, _, rest = line.rstrip(b"\n").partition(b"\t")
                yield key.decode("utf-8"), rest


def join_medications(workdir: Path, index: int, partitions: int) -> InputIssues:
    """Step 2 for Medication partition ``index``: each Medication to every patient pointing at it.

    The partition's Medications are held (a drug catalogue, small), the pointers streamed: a drug
    prescribed to a million patients costs a million written lines, not a million ids in memory.
    """
    issues = InputIssues()
    medications: dict[str, bytes] = {}
    for ref, line in _lines(workdir / "meds" / f"m{index:04d}"):
        medications.setdefault(ref, line)
    used: set[str] = set()
    joined = _Writers(workdir / "parts", "p", f"j{index:06d}.tsv", partitions)
    try:
        for ref, patient in _lines(workdir / "medrefs" / f"m{index:04d}"):
            line = medications.get(ref)
            if line is not None:
                used.add(ref)
                key = patient.decode("utf-8")
                joined.write(partition_of(key, partitions), key, line)
    finally:
        joined.close()
    issues.add("unreferenced-medication", n=len(medications) - len(used))
    return issues


# --- 3. one partition, patient by patient --------------------------------------------------------

def patients_of_partition(workdir: Path, index: int) -> Iterator[tuple[str, list[bytes]]]:
    """(patient id, its resources' NDJSON lines) for partition ``index``, by patient id."""
    by_patient: dict[str, list[bytes]] = {}
    for key, line in _lines(workdir / "parts" / f"p{index:04d}"):
        by_patient.setdefault(key, []).append(line)
    for key in sorted(by_patient):
        yield key, by_patient.pop(key)
