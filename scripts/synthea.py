#!/usr/bin/env python3
"""Generate (once) and cache a small Synthea population: FHIR R4 Bundles and Bulk Data NDJSON.

Synthea (org.mitre.synthea:synthea, pinned in ``tools/synthea/pom.xml``) is an independent generator
of synthetic patient records. The tests and benchmarks use it to see the service on data it did not
write. Everything generated stays under ``.cache/synthea/`` (git-ignored); nothing is committed.

Library use (stable API; helper scripts and tests import it)::

    from scripts.synthea import generate, load_manifest, bundle_files, ndjson_files
    folder = generate(population=40, seed=7)           # -> Path, e.g. .cache/synthea/7-40
    manifest = load_manifest(folder)                     # {"reference_date": "2026-11-24", ...}
    for path in bundle_files(folder): ...                # one transaction Bundle per patient
    for path in ndjson_files(folder): ...                # Patient.ndjson, Condition.ndjson, ...

``generate(population, seed, *, min_age=None, max_age=None, reference_date=DEFAULT_REFERENCE_DATE,
state="Massachusetts", cache_root=CACHE_ROOT, timeout_s=900) -> Path`` returns the folder::

    <cache_root>/<seed>-<population>[-a<min>-<max>][-r<YYYYMMDD>]/
        fhir/<Given>_<Family>_<uuid>.json   one FHIR R4 transaction Bundle per patient (alive and dead)
        ndjson/<ResourceType>.ndjson         the same patients as Bulk Data NDJSON, one file per type
        synthea.json                         manifest: parameters, reference date, file counts

The suffixes appear only for non-default age ranges / reference dates. Synthea is deterministic for a
given seed, clinician seed, age range and reference date, so the two exports (it writes either bundles
or NDJSON per run: ``exporter.fhir.bulk_data``) come from two runs that produce the same patients.
The reference date is Synthea's "today": evaluate the population as of ``manifest["reference_date"]``.
It is fixed by default so that a seed means the same patients on every machine and every day.

Idempotent and safe to call concurrently: a folder with its manifest is reused as it is; a lock file
serialises generators of the same folder; a half-written folder (no manifest) is regenerated.

Needs Java 17+ and Maven; the first call copies Synthea's jars from Maven Central into
``.cache/synthea/lib`` (about 200 MB, once). Generation of 40 patients takes 1–3 minutes on 2 cores.

Command line::

    scripts/synthea.py -p 40 -s 7 [-a 50-90] [--reference-date 2026-11-24]   # prints the folder
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
    "exporter.years_of_history": "10",
    "exporter.fhir.use_us_core_ig": "true",
}


class SyntheaError(RuntimeError):
    """Synthea could not be fetched or run (Java / Maven missing, generator failure, timeout)."""


def folder_name(population: int, seed: int, min_age: int | None, max_age: int | None,
                reference_date: date) -> str:
    name = f"{seed}-{population}"
    if min_age is not None or max_age is not None:
        name += f"-a{min_age if min_age is not None else 0}-{max_age if max_age is not None else 140}"
    if reference_date != DEFAULT_REFERENCE_DATE:
        name += f"-r{reference_date:%Y%m%d}"
    return name


def generate(population: int = 40, seed: int = 1, *, min_age: int | None = None, max_age: int | None = None,
             reference_date: date = DEFAULT_REFERENCE_DATE, state: str = DEFAULT_STATE,
             cache_root: Path = CACHE_ROOT, timeout_s: float = 900) -> Path:
    """The cached population folder for these parameters, generated first if it is not there."""
    if population < 1:
        raise ValueError("population must be at least 1")
    folder = Path(cache_root) / folder_name(population, seed, min_age, max_age, reference_date)
    if (folder / MANIFEST).is_file():
        return folder
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    with _locked(Path(cache_root) / f"{folder.name}.lock"):
        if (folder / MANIFEST).is_file():  # another process finished it while we waited
            return folder
        lib = ensure_synthea(Path(cache_root))
        if folder.exists():
            shutil.rmtree(folder)
        work = folder.with_name(folder.name + ".work")
        if work.exists():
            shutil.rmtree(work)
        started = time.monotonic()
        args = _app_args(population, seed, min_age, max_age, reference_date, state)
        _run_synthea(lib, args, work / "bundles", bulk=False, timeout_s=timeout_s)
        _run_synthea(lib, args, work / "bulk", bulk=True, timeout_s=timeout_s)
        work.mkdir(exist_ok=True)
        (work / "bundles" / "fhir").rename(work / "fhir")
        (work / "bulk" / "fhir").rename(work / "ndjson")
        shutil.rmtree(work / "bundles")
        shutil.rmtree(work / "bulk")
        manifest = {
            "generator": "org.mitre.synthea:synthea (tools/synthea/pom.xml)",
            "seed": seed,
            "clinician_seed": seed,
            "population": population,
            "min_age": min_age,
            "max_age": max_age,
            "state": state,
            "reference_date": reference_date.isoformat(),
            "bundles": len(list((work / "fhir").glob("*.json"))),
            "ndjson_files": sorted(p.name for p in (work / "ndjson").glob("*.ndjson")),
            "seconds": round(time.monotonic() - started, 1),
            "arguments": args,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        work.rename(folder)
    return folder


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
        done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            raise SyntheaError(f"mvn dependency:copy-dependencies failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        partial.rename(lib)
    return lib


def _app_args(population: int, seed: int, min_age: int | None, max_age: int | None,
              reference_date: date, state: str) -> list[str]:
    args = ["-s", str(seed), "-cs", str(seed), "-p", str(population), "-r", f"{reference_date:%Y%m%d}"]
    if min_age is not None or max_age is not None:
        args += ["-a", f"{min_age if min_age is not None else 0}-{max_age if max_age is not None else 140}"]
    args += [f"--{key}={value}" for key, value in _COMMON_SETTINGS.items()]
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
    parser.add_argument("--state", default=DEFAULT_STATE)
    args = parser.parse_args(argv)
    min_age, max_age = args.ages if args.ages else (None, None)
    try:
        folder = generate(args.population, args.seed, min_age=min_age, max_age=max_age,
                          reference_date=args.reference_date, state=args.state)
    except SyntheaError as exc:
        print(f"synthea: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
