#!/usr/bin/env python3
"""Generate (once) and cache a small Synthea population: FHIR R4 Bundles and Bulk Data NDJSON.

Synthea (org.mitre.synthea:synthea, pinned in ``tools/synthea/pom.xml``) is an independent generator
of synthetic patient records. The tests and benchmarks use it to see the service on data it did not
write. Everything generated stays under ``.cache/synthea/`` (git-ignored); nothing is committed.

Library use (stable API; helper scripts and tests import it), with the repository root on sys.path::

    from scripts.synthea import generate, load_manifest, bundle_files, ndjson_files
    folder = generate(population=40, seed=7)           # -> Path, e.g. .cache/synthea/7-40
    manifest = load_manifest(folder)                     # {"reference_date": "2026-11-24", ...}
    for path in bundle_files(folder): ...                # one transaction Bundle per patient
    for path in ndjson_files(folder): ...                # Patient.ndjson, Condition.ndjson, ...

``generate(population, seed, *, min_age=None, max_age=None, reference_date=DEFAULT_REFERENCE_DATE,
years_of_history=10, bulk_data=True, state="Massachusetts", cache_root=CACHE_ROOT, timeout_s=1800) -> Path``
returns the folder::

    <cache_root>/<seed>-<population>[-a<min>-<max>][-y<years>][-r<YYYYMMDD>]/
        fhir/<Given>_<Family>_<uuid>.json   one FHIR R4 transaction Bundle per patient (alive and dead)
        ndjson/<ResourceType>.ndjson         the same patients as Bulk Data NDJSON, one file per type
        synthea.json                         manifest: parameters, reference date, formats, file counts

The suffixes appear only for non-default age ranges / history lengths / reference dates. Synthea
writes either bundles or NDJSON in one run (``exporter.fhir.bulk_data``); it is deterministic for a
given seed, clinician seed, age range and reference date, so the two exports come from two runs
that produce the same patients (same ids; checked). ``bulk_data=False`` skips the NDJSON run (the
tests need only bundles); a later call with ``bulk_data=True`` adds it to the same folder.
``years_of_history`` is Synthea's export filter (older encounters and resolved conditions dropped;
active conditions kept): 10 years of patients aged 50–90 is about 9 MB of FHIR per patient.
The reference date is Synthea's "today": evaluate the population as of ``manifest["reference_date"]``.
It is fixed by default so that a seed means the same patients on every machine and every day.

Idempotent and safe to call concurrently: a folder with its manifest is reused as it is; a lock file
serialises generators of the same folder; a half-written folder (no manifest) is regenerated.

Needs Java 17+ and Maven; the first call copies Synthea's jars from Maven Central into
``.cache/synthea/lib`` (about 200 MB, once). One run (bundles only) of 40 patients aged 50–90 takes about 2 minutes of CPU.

Command line::

    scripts/synthea.py -p 40 -s 7 [-a 50-90] [--years-of-history 3] [--no-bulk-data]
                       [--reference-date 2026-11-24]          # prints the folder

Importing it without the root on sys.path (``scripts`` has no ``__init__``)::

    spec = importlib.util.spec_from_file_location("synthea", ROOT / "scripts" / "synthea.py")
    synthea = importlib.util.module_from_spec(spec); spec.loader.exec_module(synthea)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POM_DIR = ROOT / "tools" / "synthea"
CACHE_ROOT = ROOT / ".cache" / "synthea"
LIB_DIR_NAME = "lib"
DEFAULT_REFERENCE_DATE = date(2026, 11, 24)
DEFAULT_STATE = "Massachusetts"
HEAP = "-Xmx3g"
MANIFEST = "synthea.json"
DEFAULT_YEARS_OF_HISTORY = 10

# Synthea settings passed as --key=value: only FHIR R4 (no hospital / practitioner side files,
# no STU3 / DSTU2 / CSV / CCDA), 10 years of history (Synthea's default, said here on purpose).
_COMMON_SETTINGS = {
    "exporter.fhir.export": "true",
    "exporter.fhir_stu3.export": "false",
    "exporter.fhir_dstu2.export": "false",
    "exporter.ccda.export": "false",
    "exporter.csv.export": "false",
    "exporter.text.export": "false",
    "exporter.hospital.fhir.export": "false",
    "exporter.practitioner.fhir.export": "false",
    "exporter.groups.fhir.export": "false",
    "exporter.metadata.export": "false",
    "exporter.fhir.use_us_core_ig": "true",
}


class SyntheaError(RuntimeError):
    """Synthea could not be fetched or run (Java / Maven missing, generator failure, timeout)."""


def folder_name(population: int, seed: int, min_age: int | None, max_age: int | None,
                reference_date: date, years_of_history: int = 10) -> str:
    name = f"{seed}-{population}"
    if min_age is not None or max_age is not None:
        name += f"-a{min_age if min_age is not None else 0}-{max_age if max_age is not None else 140}"
    if years_of_history != DEFAULT_YEARS_OF_HISTORY:
        name += f"-y{years_of_history}"
    if reference_date != DEFAULT_REFERENCE_DATE:
        name += f"-r{reference_date:%Y%m%d}"
    return name


def generate(population: int = 40, seed: int = 1, *, min_age: int | None = None, max_age: int | None = None,
             reference_date: date = DEFAULT_REFERENCE_DATE, years_of_history: int = DEFAULT_YEARS_OF_HISTORY,
             bulk_data: bool = True, state: str = DEFAULT_STATE, cache_root: Path = CACHE_ROOT,
             timeout_s: float = 1800) -> Path:
    """The cached population folder for these parameters, generated first if it is not there."""
    if population < 1:
        raise ValueError("population must be at least 1")
    cache_root = Path(cache_root)
    folder = cache_root / folder_name(population, seed, min_age, max_age, reference_date, years_of_history)
    if _complete(folder, bulk_data):
        return folder
    cache_root.mkdir(parents=True, exist_ok=True)
    args = _app_args(population, seed, min_age, max_age, reference_date, years_of_history, state)
    with _locked(cache_root / f"{folder.name}.lock"):
        if _complete(folder, bulk_data):  # another process finished it while we waited
            return folder
        lib = ensure_synthea(cache_root)
        if not (folder / MANIFEST).is_file():
            _generate_bundles(lib, args, folder, timeout_s, {
                "generator": "org.mitre.synthea:synthea (tools/synthea/pom.xml)",
                "seed": seed, "clinician_seed": seed, "population": population, "min_age": min_age,
                "max_age": max_age, "years_of_history": years_of_history, "state": state,
                "reference_date": reference_date.isoformat(), "arguments": args})
        if bulk_data and not _complete(folder, True):
            _add_ndjson(lib, args, folder, timeout_s)
    return folder


def _complete(folder: Path, bulk_data: bool) -> bool:
    if not (folder / MANIFEST).is_file():
        return False
    return not bulk_data or "ndjson" in load_manifest(folder).get("formats", [])


def _generate_bundles(lib: Path, args: list[str], folder: Path, timeout_s: float, manifest: dict) -> None:
    """Run Synthea once for per-patient Bundles; the folder appears only when it is complete."""
    work = folder.with_name(folder.name + ".work")
    for stale in (folder, work):
        if stale.exists():
            shutil.rmtree(stale)
    started = time.monotonic()
    _run_synthea(lib, args, work / "run", bulk=False, timeout_s=timeout_s)
    (work / "run" / "fhir").rename(work / "fhir")
    shutil.rmtree(work / "run")
    manifest.update(formats=["bundles"], bundles=len(list((work / "fhir").glob("*.json"))),
                    seconds={"bundles": round(time.monotonic() - started, 1)})
    _write_manifest(work, manifest)
    work.rename(folder)


def _add_ndjson(lib: Path, args: list[str], folder: Path, timeout_s: float) -> None:
    """Run Synthea again with the same arguments for Bulk Data NDJSON of the same patients."""
    run = folder / "ndjson.work"
    if run.exists():
        shutil.rmtree(run)
    started = time.monotonic()
    _run_synthea(lib, args, run, bulk=True, timeout_s=timeout_s)
    if (folder / "ndjson").exists():
        shutil.rmtree(folder / "ndjson")
    (run / "fhir").rename(folder / "ndjson")
    shutil.rmtree(run)
    manifest = load_manifest(folder)
    manifest["formats"] = ["bundles", "ndjson"]
    manifest["ndjson_files"] = sorted(p.name for p in (folder / "ndjson").glob("*.ndjson"))
    manifest.setdefault("seconds", {})["ndjson"] = round(time.monotonic() - started, 1)
    _write_manifest(folder, manifest)


def _write_manifest(folder: Path, manifest: dict) -> None:
    partial = folder / (MANIFEST + ".tmp")
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    partial.replace(folder / MANIFEST)


def load_manifest(folder: Path) -> dict:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def bundle_files(folder: Path) -> list[Path]:
    """The per-patient FHIR Bundles, in name order."""
    return sorted((Path(folder) / "fhir").glob("*.json"))


def ndjson_files(folder: Path) -> list[Path]:
    """The Bulk Data NDJSON files, one per resource type, in name order."""
    return sorted((Path(folder) / "ndjson").glob("*.ndjson"))


def ensure_synthea(cache_root: Path = CACHE_ROOT) -> Path:
    """The folder holding Synthea's jar and its dependencies (copied with Maven on first use)."""
    lib = Path(cache_root) / LIB_DIR_NAME
    if any(lib.glob("synthea-*.jar")):
        return lib
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise SyntheaError(f"{tool} is not on PATH (Synthea needs Java 17+ and Maven)")
    with _locked(Path(cache_root) / "lib.lock"):
        if any(lib.glob("synthea-*.jar")):
            return lib
        partial = lib.with_name(LIB_DIR_NAME + ".work")
        if partial.exists():
            shutil.rmtree(partial)
        command = ["mvn", "-q", "-B", "-f", str(POM_DIR / "pom.xml"), "dependency:copy-dependencies",
                   f"-DoutputDirectory={partial}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SyntheaError(f"mvn dependency:copy-dependencies failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        partial.rename(lib)
    return lib


def _app_args(population: int, seed: int, min_age: int | None, max_age: int | None,
              reference_date: date, years_of_history: int, state: str) -> list[str]:
    args = ["-s", str(seed), "-cs", str(seed), "-p", str(population), "-r", f"{reference_date:%Y%m%d}"]
    if min_age is not None or max_age is not None:
        args += ["-a", f"{min_age if min_age is not None else 0}-{max_age if max_age is not None else 140}"]
    args += [f"--{key}={value}" for key, value in _COMMON_SETTINGS.items()]
    args.append(f"--exporter.years_of_history={years_of_history}")
    return args + [state]


def _run_synthea(lib: Path, app_args: list[str], out_dir: Path, *, bulk: bool, timeout_s: float) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    command = ["java", HEAP, "-cp", f"{lib}/*", "App", *app_args[:-1],
               f"--exporter.baseDirectory={out_dir}/", f"--exporter.fhir.bulk_data={'true' if bulk else 'false'}",
               app_args[-1]]
    log = out_dir / "synthea.log"
    with log.open("w", encoding="utf-8") as sink:
        try:
            done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, cwd=out_dir, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise SyntheaError(f"Synthea did not finish within {timeout_s:.0f} s (log: {log})") from None
    if done.returncode != 0 or not (out_dir / "fhir").is_dir():
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SyntheaError(f"Synthea failed (exit {done.returncode}):\n{tail}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _age_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-p", "--population", type=int, default=40)
    parser.add_argument("-s", "--seed", type=int, default=1)
    parser.add_argument("-a", "--ages", type=_age_range, default=None, help="MIN-MAX, e.g. 50-90")
    parser.add_argument("--reference-date", type=date.fromisoformat, default=DEFAULT_REFERENCE_DATE)
    parser.add_argument("--years-of-history", type=int, default=DEFAULT_YEARS_OF_HISTORY)
    parser.add_argument("--no-bulk-data", action="store_true", help="per-patient Bundles only (one Synthea run)")
    parser.add_argument("--state", default=DEFAULT_STATE)
    args = parser.parse_args(argv)
    min_age, max_age = args.ages if args.ages else (None, None)
    try:
        folder = generate(args.population, args.seed, min_age=min_age, max_age=max_age,
                          reference_date=args.reference_date, years_of_history=args.years_of_history,
                          bulk_data=not args.no_bulk_data, state=args.state)
    except SyntheaError as exc:
        print(f"synthea: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
