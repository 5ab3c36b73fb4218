"""Bounded memory: grouping a 20 000-patient export holds one partition at a time, never the export."""

from __future__ import annotations

import json
import tracemalloc

import orjson
import pytest

from cds_service.screening import grouping
from cds_service.screening.inputs import NdjsonSource
from cds_service.screening.reads import TrialReads
from cds_service.trials import get_trial

from .helpers import background_patient, resources, with_new_ids

PATIENTS = 20_000


@pytest.fixture(scope="module")
def big_export(seeds, tmp_path_factory):
    """20 000 patients as Bulk Data NDJSON, written one patient at a time; the seed patients (under new
    ids, twice over) are the PDAC patients among them."""
    folder = tmp_path_factory.mktemp("big")
    files: dict[str, object] = {}
    pdac = [with_new_ids(b, f"copy{k}") for k in range(2) for b in seeds.values()]
    try:
        def write(resource):
            rtype = resource["resourceType"]
            if rtype not in files:
                files[rtype] = open(folder / f"{rtype}.ndjson", "wb")
            files[rtype].write(orjson.dumps(resource) + b"\n")

        for resource in resources(pdac):
            write(resource)
        for n in range(PATIENTS - len(pdac)):
            for resource in background_patient(n):
                write(resource)
        write({"resourceType": "Medication", "id": "metformin",
               "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809"}]}})
    finally:
        for f in files.values():
            f.close()
    return folder, len(pdac)


@pytest.mark.slow
def test_grouping_20000_patients_peaks_far_below_the_export_size(big_export, tmp_path):
    """Partition, join and regroup the whole export in this process under tracemalloc, parsing each
    patient's resources as a worker does before evaluating them."""
    folder, pdac = big_export
    export_bytes = sum(p.stat().st_size for p in folder.iterdir())
    assert export_bytes > 20 * 1024 * 1024
    reads = TrialReads.from_trial(get_trial("NCT05271110"))
    source = NdjsonSource(folder)
    partitions = 32  # ~0.8 MB of input each (real exports: tens of MB, see grouping.PARTITION_BYTES)
    tracemalloc.start()
    try:
        for i, chunk in enumerate(source.chunks(4 * 1024 * 1024)):
            grouping.partition_chunk(chunk, i, reads, tmp_path, partitions)
        for m in range(partitions):
            grouping.join_medications(tmp_path, m, partitions)
        seen, largest = 0, 0
        for p in range(partitions):
            for key, lines in grouping.patients_of_partition(tmp_path, p):
                record = [orjson.loads(line) for line in lines]
                assert any(r["resourceType"] == "Patient" for r in record), key
                seen, largest = seen + 1, max(largest, sum(map(len, lines)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == PATIENTS
    print(f"export {export_bytes / 1e6:.1f} MB, {partitions} partitions, peak traced {peak / 1e6:.2f} MB")
    assert peak < export_bytes / 8, f"peak {peak / 1e6:.1f} MB for a {export_bytes / 1e6:.1f} MB export"


def test_partitions_grow_with_the_input():
    assert grouping.partition_count(10, 2) == 4
    assert grouping.partition_count(100 * grouping.PARTITION_BYTES, 2) == 101
    assert grouping.partition_count(10**15, 2) == grouping.MAX_PARTITIONS


def _screen_with_256_open_files(args: list) -> None:
    import resource
    import sys

    from .helpers import screen

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))  # this forked child only
    sys.exit(screen(*args))


def test_partitions_stay_inside_a_low_open_files_limit(seeds, as_of, tmp_path, monkeypatch):
    """With 256 open files allowed (macOS's default), a run that would want thousands of partitions
    uses fewer instead of failing with 'too many open files'."""
    import multiprocessing

    from .helpers import evaluations, write_ndjson

    folder = write_ndjson(tmp_path / "in", resources(list(seeds.values())[:6]))
    monkeypatch.setattr(grouping, "PARTITION_BYTES", 16)  # the forked child inherits these
    monkeypatch.setattr(grouping, "MAX_PARTITIONS", 100_000)
    args = ["--ndjson", folder, "--out", tmp_path / "out", "--as-of", as_of, "--quiet", "--workers", 1]
    child = multiprocessing.get_context("fork").Process(target=_screen_with_256_open_files, args=(args,))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    found = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert found["engine"]["partitions"] <= (256 - 64) // 3
    assert len(evaluations(tmp_path / "out")) == 6
