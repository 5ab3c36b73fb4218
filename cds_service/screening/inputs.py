"""The screen's inputs: a folder of Bulk Data NDJSON, or a folder of one-patient Bundles.

``NdjsonSource`` takes what a Bulk Data export writes (``Patient.ndjson``, ``Condition.ndjson``, …, or
several files per type such as ``Observation_1.ndjson``, optionally ``.gz``); the type of each line is
read from the line, not from the file name. Large plain files are cut into byte-range ``Chunk``s so
that several workers can read one file; a gzip file is one chunk (it cannot be entered midway).

``BundleSource`` takes a folder of Bundles, one patient each (Synthea's ``output/fhir``): a Bundle is
already one patient's record, so each file is evaluated as ``trialcds evaluate --bundle`` would.

The Bulk Data client (``bulk.py``) downloads into a folder and hands it to ``NdjsonSource``.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from cds_service.screening.issues import InputIssues

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
BUNDLE_SUFFIXES = (".json", ".json.gz")
CHUNK_BYTES = 32 * 1024 * 1024
GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


class InputError(Exception):
    """The input cannot be used at all (no such folder, no files): a usage error, exit code 2."""


@dataclass(frozen=True)
class Chunk:
    """Lines of ``path`` that start in [start, end) — the whole file when ``end`` is None."""

    path: Path
    name: str  # the path relative to the input folder, for messages
    start: int = 0
    end: int | None = None


def _files(folder: Path, suffixes: tuple[str, ...], exclude: Path | None = None) -> list[Path]:
    """The input files under ``folder``, by path; none under ``exclude`` (an --out inside the input
    folder must not be read back as input on the next run)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    skip = exclude.resolve() if exclude is not None else None
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(suffixes)
                   and not (skip is not None and p.resolve().is_relative_to(skip)))
    if not files:
        raise InputError(f"{folder}: no {' / '.join(suffixes)} files")
    return files


class NdjsonSource:
    kind = "ndjson"

    def __init__(self, folder: Path, exclude: Path | None = None) -> None:
        self.folder = Path(folder)
        self.files = _files(self.folder, NDJSON_SUFFIXES, exclude)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    def chunks(self, chunk_bytes: int | None = None) -> list[Chunk]:
        chunk_bytes = chunk_bytes or CHUNK_BYTES
        chunks = []
        for path in self.files:
            name = path.relative_to(self.folder).as_posix()
            size = path.stat().st_size
            if path.name.endswith(".gz") or size <= chunk_bytes:
                chunks.append(Chunk(path, name))
                continue
            chunks += [Chunk(path, name, start, min(start + chunk_bytes, size))
                       for start in range(0, size, chunk_bytes)]
        return chunks


def read_chunk(chunk: Chunk, issues: InputIssues) -> Iterator[tuple[int, bytes]]:
    """(where, line) for each non-blank line of the chunk — where: the byte offset in a plain file,
    the line number in a gzip file (``describe`` words it); a file that breaks off is an issue."""
    if chunk.path.name.endswith(".gz"):
        yield from _read_gzip(chunk, issues)
        return
    with open(chunk.path, "rb") as f:
        position = chunk.start
        if chunk.start:
            # The line that straddles the start belongs to the previous chunk.
            f.seek(chunk.start - 1)
            position = chunk.start - 1 + len(f.readline())
        end = chunk.end
        for line in f:
            if end is not None and position >= end:
                break
            if len(line) > 2 or line.strip():
                yield position, line
            position += len(line)


def describe(chunk: Chunk, where: int) -> str:
    return f"{chunk.name} line {where}" if chunk.path.name.endswith(".gz") else f"{chunk.name} at byte {where}"


def _read_gzip(chunk: Chunk, issues: InputIssues) -> Iterator[tuple[int, bytes]]:
    number = 0
    try:
        with gzip.open(chunk.path, "rb") as f:
            for number, line in enumerate(f, start=1):
                if len(line) > 2 or line.strip():
                    yield number, line
    except GZIP_ERRORS as exc:
        issues.add("unreadable-file", f"{chunk.name}: {exc.__class__.__name__} after line {number}")


def parse_line(line: bytes) -> dict | None:
    """One NDJSON line → a resource, or None when it is not a JSON object with a resourceType."""
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
        return resource
    return None


class BundleSource:
    kind = "bundles"

    def __init__(self, folder: Path, exclude: Path | None = None) -> None:
        self.folder = Path(folder)
        self.files = _files(self.folder, BUNDLE_SUFFIXES, exclude)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def read_bundle(path: Path) -> dict | None:
    """A Bundle file (gzip too) → the Bundle, or None when it is not readable JSON of a Bundle."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        bundle = orjson.loads(data)
    except (*GZIP_ERRORS, orjson.JSONDecodeError):
        return None
    if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle" and isinstance(bundle.get("entry", []), list):
        return bundle
    return None
