"""The three shapes of input, and what the screen does with input it cannot use."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from cds_service.screening import inputs
from cds_service.screening.inputs import NdjsonSource, read_chunk
from cds_service.screening.issues import InputIssues
from cds_service.seeding import patient_id

from .helpers import METFORMIN, background_patient, evaluations, resources, screen, summary, write_bundles, write_ndjson


def decisions(found: dict[str, dict]) -> dict[str, tuple]:
    """Verdict and each criterion's status and evidence (as a set): what must not depend on file layout."""
    return {ref: (e["verdict"], [(c["id"], c["status"], sorted(c["evidence"])) for c in e["criteria"]])
            for ref, e in found.items()}


def test_several_files_per_type_gzip_and_byte_range_chunks_decide_alike(seeds, as_of, tmp_path, monkeypatch):
    items = resources(seeds.values())
    plain = write_ndjson(tmp_path / "plain", items)
    split = write_ndjson(tmp_path / "split", items, files_per_type=3, gzip_types={"Observation", "Condition"})
    assert screen("--ndjson", plain, "--out", tmp_path / "o1", "--as-of", as_of, "--quiet") == 0
    monkeypatch.setattr(inputs, "CHUNK_BYTES", 4096)  # every plain file cut into several byte ranges
    assert len(NdjsonSource(split).chunks()) > len(NdjsonSource(split).files)
    assert screen("--ndjson", split, "--out", tmp_path / "o2", "--as-of", as_of, "--quiet", "--workers", 2) == 0
    one, other = evaluations(tmp_path / "o1"), evaluations(tmp_path / "o2")
    assert len(one) == len(seeds)
    assert decisions(one) == decisions(other)


def test_byte_range_chunks_give_every_line_exactly_once(tmp_path):
    lines = [orjson.dumps({"resourceType": "Basic", "id": f"b{i}", "text": "x" * (i % 97)}) for i in range(2000)]
    path = tmp_path / "Basic.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = NdjsonSource(tmp_path)
    for size in (1, 100, 4096, 10**9):
        got = [line.rstrip(b"\n") for chunk in source.chunks(size) for _, line in read_chunk(chunk, InputIssues())]
        assert got == lines, size


def test_bundles_folder_gzip_too(seeds, as_of, tmp_path):
    folder = write_bundles(tmp_path / "bundles", dict(list(seeds.items())[:5]))
    first = next(folder.glob("*.json"))
    (folder / (first.name + ".gz")).write_bytes(gzip.compress(first.read_bytes()))
    first.unlink()
    assert screen("--bundles", folder, "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 0
    assert len(evaluations(tmp_path / "out")) == 5


def test_medications_are_joined_to_every_patient_pointing_at_them(as_of, tmp_path):
    items = background_patient(1) + background_patient(2) + [METFORMIN, {**METFORMIN, "id": "nobody-uses-me"}]
    assert screen("--ndjson", write_ndjson(tmp_path / "in", items), "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 0
    s = summary(tmp_path / "out")
    assert s["counts"]["screened"] == 2
    assert s["input"]["ignored"]["unreferenced-medication"]["count"] == 1
    # The grouping step put the Medication beside each MedicationRequest pointing at it.
    from cds_service.screening import grouping
    from cds_service.screening.reads import TrialReads
    from cds_service.trials import get_trial
    work = tmp_path / "work"
    reads = TrialReads.from_trial(get_trial("NCT05271110"))
    chunk = NdjsonSource(tmp_path / "in").chunks()
    for i, c in enumerate(chunk):
        grouping.partition_chunk(c, i, reads, work, 3)
    for m in range(3):
        grouping.join_medications(work, m, 3)
    grouped = {key: [orjson.loads(line)["resourceType"] for line in lines]
               for p in range(3) for key, lines in grouping.patients_of_partition(work, p)}
    assert sorted(grouped) == ["bg-000001", "bg-000002"]
    assert all(types.count("Medication") == 1 and "MedicationRequest" in types for types in grouped.values())


def test_broken_input_is_skipped_counted_listed_and_exits_1(seeds, as_of, tmp_path):
    slug, bundle = next(iter(seeds.items()))
    folder = write_ndjson(tmp_path / "in", resources([bundle]) + background_patient(7))
    with open(folder / "Condition.ndjson", "ab") as f:
        f.write(b'{"resourceType": "Condition", "id": "broken"\n')  # cut off
        f.write(b'["not", "a", "resource"]\n')
        f.write(orjson.dumps({"resourceType": "Condition", "id": "orphan", "code": {"text": "x"}}) + b"\n")
        f.write(orjson.dumps({"resourceType": "Condition", "id": "ghost-c", "subject": {"reference": "Patient/ghost"}}) + b"\n")
    (folder / "Observation_2.ndjson.gz").write_bytes(gzip.compress(b'{"resourceType": "Observation"}\n' * 50)[:-12])
    assert screen("--ndjson", folder, "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 1
    s = summary(tmp_path / "out")
    skipped = s["input"]["skipped"]
    assert s["input"]["readWhole"] is False
    assert skipped["malformed-line"]["count"] == 2
    assert all(w.startswith("Condition.ndjson at byte ") for w in skipped["malformed-line"]["first"])
    assert skipped["resource-without-patient"]["count"] == 1
    assert skipped["patient-without-patient-resource"]["first"] == ["Patient/ghost (1 resources)"]
    assert skipped["unreadable-file"]["first"][0].startswith("Observation_2.ndjson.gz")
    # The patients that were whole are still screened.
    assert set(evaluations(tmp_path / "out")) == {f"Patient/{patient_id(bundle)}", "Patient/bg-000007"}


def test_a_bundle_that_is_not_one_patient_is_skipped(seeds, as_of, tmp_path):
    folder = write_bundles(tmp_path / "bundles", dict(list(seeds.items())[:2]))
    (folder / "garbage.json").write_text("{not json", encoding="utf-8")
    two = dict(list(seeds.values())[0])
    two["entry"] = list(seeds["p01-eligible-gem-nabpac"]["entry"]) + list(seeds["p10-review-ecog2"]["entry"])
    (folder / "two-patients.json").write_text(json.dumps(two), encoding="utf-8")
    practitioners = {"resourceType": "Bundle", "type": "transaction",
                     "entry": [{"resource": {"resourceType": "Practitioner", "id": "dr1"}}]}
    (folder / "practitionerInformation1.json").write_text(json.dumps(practitioners), encoding="utf-8")
    assert screen("--bundles", folder, "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 1
    found = summary(tmp_path / "out")["input"]
    skipped = found["skipped"]["malformed-bundle"]
    assert skipped["count"] == 2
    assert found["ignored"]["bundle-without-patient"]["count"] == 1  # Synthea's extra files: not a loss
    assert len(evaluations(tmp_path / "out")) == 2


@pytest.mark.parametrize("args", [
    ["--ndjson", "{tmp}/missing"],
    ["--ndjson", "{tmp}/empty"],
    ["--ndjson", "{tmp}/empty", "--trial", "NCT00000000"],
    ["--ndjson", "{tmp}/empty", "--group", "g1"],
    ["--ndjson", "{tmp}/empty", "--previous", "{tmp}/missing"],
])
def test_usage_errors_exit_2_with_one_line(args, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = screen(*[a.format(tmp=tmp_path) for a in args], "--out", tmp_path / "out")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trialcds screen: error:")
    assert not (tmp_path / "out").exists()  # nothing created for a run that never started


def test_an_out_that_cannot_be_a_folder_is_a_usage_error(seeds, as_of, tmp_path, capsys):
    folder = write_ndjson(tmp_path / "in", resources(list(seeds.values())[:1]))
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    assert screen("--ndjson", folder, "--out", tmp_path / "a-file", "--as-of", as_of) == 2
    assert "cannot create the folder" in capsys.readouterr().err


def test_two_inputs_at_once_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        screen("--ndjson", tmp_path, "--bundles", tmp_path, "--out", tmp_path / "out")
    assert exc.value.code == 2


def test_a_research_study_is_joined_like_a_medication(as_of, tmp_path):
    """ResearchSubject names its patient in ``individual`` and its study by reference; the study (no
    patient) reaches every patient whose subject record points at it."""
    from cds_service.screening import grouping
    from cds_service.screening.reads import TrialReads
    from cds_service.trials import get_trial

    study = {"resourceType": "ResearchStudy", "id": "scanpan", "status": "active"}
    subjects = [{"resourceType": "ResearchSubject", "id": f"rs{n}", "status": "candidate",
                 "individual": {"reference": f"Patient/bg-00000{n}"}, "study": {"reference": "ResearchStudy/scanpan"}}
                for n in (1, 2)]
    items = background_patient(1) + background_patient(2) + subjects + [study, METFORMIN]
    folder = write_ndjson(tmp_path / "in", items)
    reads = TrialReads.from_trial(get_trial("NCT05271110"))
    assert reads.wants(study) and reads.wants(subjects[0])
    for i, chunk in enumerate(NdjsonSource(folder).chunks()):
        grouping.partition_chunk(chunk, i, reads, tmp_path / "work", 2)
    for m in range(2):
        grouping.join_medications(tmp_path / "work", m, 2)
    grouped = {key: sorted(orjson.loads(line)["resourceType"] for line in lines)
               for p in range(2) for key, lines in grouping.patients_of_partition(tmp_path / "work", p)}
    assert sorted(grouped) == ["bg-000001", "bg-000002"]
    for types in grouped.values():
        assert types.count("ResearchStudy") == 1 and types.count("ResearchSubject") == 1
    assert screen("--ndjson", folder, "--out", tmp_path / "out", "--as-of", as_of, "--quiet") == 0
