"""Broken data never crashes a decision: a malformed resource is skipped and noted, the rest decides.
And ``trialcds evaluate`` turns unusable input into a one-line error with exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service.cli import main

from .builders import (
    CRITERIA_IDS, GEMCITABINE, TACROLIMUS, bundle, condition, ecog, eligible, evaluate, imaging_study, med_request,
    med_statement, notes_about, observation, patient, status, tumour_size,
)

STATUSES = {"pass", "fail", "unknown"}


def spoil(resource: dict, **elements) -> dict:
    """The resource with some elements replaced by broken values."""
    return {**resource, **elements}


def _statuses(evaluation) -> dict[str, str]:
    return {c.id: c.status for c in evaluation.criteria}


BASELINE = _statuses(evaluate(eligible()))


# Each case: a broken resource that, were it read, would change the criterion named (so a silent
# mis-read shows up), and the reference its note must carry.
BROKEN = [
    pytest.param(spoil(condition("C50.911", id="b"), code="C50.911"), "other-malignancy", "Condition/b",
                 id="Condition.code-as-string"),
    pytest.param(spoil(condition("C50.911", id="b"), code={"coding": {"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                                       "code": "C50.911"}}),
                 "other-malignancy", "Condition/b", id="coding-not-a-list"),
    pytest.param(condition("C50.911", id="b", onsetDateTime="yesterday"), "other-malignancy", "Condition/b",
                 id="onset-yesterday"),
    pytest.param(condition("C50.911", id="b", onsetDateTime="2026-13-45"), "other-malignancy", "Condition/b",
                 id="onset-impossible-date"),
    pytest.param(condition("C50.911", id="b", clinicalStatus=["active"]), "other-malignancy", "Condition/b",
                 id="clinicalStatus-a-list"),
    pytest.param(condition("C50.911", id="b", status=7), "other-malignancy", "Condition/b", id="status-not-a-code"),
    pytest.param(ecog(None, 2, id="b", valueQuantity="4"), "ecog", "Observation/b", id="valueQuantity-as-string"),
    pytest.param(ecog(None, 2, id="b", valueQuantity={"value": "4", "unit": "{score}"}), "ecog", "Observation/b",
                 id="quantity-value-as-string"),
    pytest.param(ecog(9, 2, id="b"), "ecog", "Observation/b", id="ecog-9"),
    pytest.param(ecog(True, 2, id="b"), "ecog", "Observation/b", id="ecog-boolean"),
    pytest.param(ecog(4, 2, id="b", effectiveDateTime="yesterday"), "ecog", "Observation/b", id="ecog-date-yesterday"),
    pytest.param(tumour_size(80, 5, id="b", component="big"), "liver-limited", "Observation/b",
                 id="component-not-a-list"),
    pytest.param(tumour_size(80, 5, id="b", component=[]), "liver-limited", "Observation/b",
                 id="tumour-size-without-longest-dimension"),
    pytest.param(med_statement(TACROLIMUS, 10, id="b", medicationCodeableConcept="tacrolimus"), "immunosuppressants",
                 "MedicationStatement/b", id="medication-as-string"),
    pytest.param(med_request(TACROLIMUS, 10, id="b", authoredOn=20260101), "immunosuppressants",
                 "MedicationRequest/b", id="authoredOn-a-number"),
    pytest.param(med_request(TACROLIMUS, 10, id="b", dosageInstruction={"timing": {}}), "immunosuppressants",
                 "MedicationRequest/b", id="dosageInstruction-not-a-list"),
    pytest.param(imaging_study("CT", 10, id="b", series="CT"), "extrahepatic-metastases", "ImagingStudy/b",
                 id="series-not-a-list"),
    pytest.param(condition("C78.01", id="b", subject="Patient/p1"), "extrahepatic-metastases", "Condition/b",
                 id="subject-as-string"),
]


@pytest.mark.parametrize(("broken", "criterion", "reference"), BROKEN)
def test_a_broken_resource_is_skipped_and_noted(broken, criterion, reference):
    expected = dict(BASELINE)
    if criterion == "extrahepatic-metastases":
        # Without the baseline's CT, only the broken resource could move this criterion off "unknown".
        resources = eligible(imaging=None)
        expected[criterion] = "unknown"
    else:
        resources = eligible()
    evaluation = evaluate(resources + [broken])
    assert _statuses(evaluation) == expected
    assert notes_about(evaluation, reference), evaluation.notes


@pytest.mark.parametrize("junk", ["a string", 42, None, ["a", "list"], {"no": "resourceType"},
                                  {"resourceType": 12, "id": "x"}])
def test_things_that_are_not_resources_are_skipped_and_noted(junk):
    evaluation = evaluate(eligible() + [junk])
    assert _statuses(evaluation) == BASELINE
    assert any("not a FHIR resource" in n for n in evaluation.notes)


def test_medication_reference_to_a_missing_medication_reads_its_display():
    missing = med_statement(None, 10, id="m", medicationCodeableConcept=None,
                            medicationReference={"reference": "Medication/nowhere", "display": "Tacrolimus 1 mg"})
    evaluation = evaluate(eligible() + [missing])
    assert status(evaluation, "immunosuppressants") == "fail"
    assert notes_about(evaluation, "MedicationStatement/m")


def test_medication_reference_to_a_missing_medication_without_display_is_noted():
    missing = med_statement(None, 10, id="m", medicationCodeableConcept=None,
                            medicationReference={"reference": "Medication/nowhere"})
    evaluation = evaluate(eligible() + [missing])
    assert _statuses(evaluation) == BASELINE
    assert notes_about(evaluation, "MedicationStatement/m")


def test_many_broken_resources_at_once_still_decide_from_the_rest():
    broken = [p.values[0] for p in BROKEN]
    evaluation = evaluate(eligible(imaging=[imaging_study("MR", 3)]) + broken + ["junk", {"resourceType": None}])
    assert _statuses(evaluation) == BASELINE
    for p in BROKEN:
        assert notes_about(evaluation, p.values[2]), p.id


def test_a_broken_patient_birth_date_is_unknown_age_and_noted():
    evaluation = evaluate(eligible(patient=patient(birth_date="sometime")))
    assert status(evaluation, "age") == "unknown"
    assert notes_about(evaluation, "Patient/p1")
    assert {k: v for k, v in _statuses(evaluation).items() if k != "age"} == {
        k: v for k, v in BASELINE.items() if k != "age"}


def test_an_observation_whose_code_is_broken_does_not_block_the_other_readers():
    broken = spoil(ecog(4, 2, id="b"), code={"coding": "89247-1"})
    evaluation = evaluate(eligible() + [broken])
    assert _statuses(evaluation) == BASELINE
    assert len(notes_about(evaluation, "Observation/b")) == 1  # one note per resource


# --- trialcds evaluate ---------------------------------------------------------------------------

def write(tmp_path: Path, content, name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


UNUSABLE = [
    pytest.param("{ this is not json", id="not-json"),
    pytest.param("", id="empty-file"),
    pytest.param(json.dumps([{"resourceType": "Patient"}]), id="a-json-list"),
    pytest.param(json.dumps({"resourceType": "Patient", "id": "p1"}), id="not-a-bundle"),
    pytest.param(json.dumps(bundle([condition("C25.0")])), id="no-patient"),
    pytest.param(json.dumps(bundle([patient("a"), patient("b")])), id="two-patients"),
    pytest.param(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": {"resource": {}}}),
                 id="entry-not-a-list"),
]


@pytest.mark.parametrize("content", UNUSABLE)
def test_unusable_input_is_a_one_line_error_with_exit_code_2(tmp_path, capsys, content):
    code, out, err = run(["evaluate", "--bundle", str(write(tmp_path, content))], capsys)
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("trialcds evaluate: error:")


def test_missing_file_is_a_one_line_error(tmp_path, capsys):
    code, _, err = run(["evaluate", "--bundle", str(tmp_path / "absent.json")], capsys)
    assert code == 2 and err.count("\n") == 1


def test_console_script_as_a_subprocess(tmp_path):
    script = shutil.which("trialcds", path=str(Path(sys.executable).parent))
    assert script, "the trialcds console script is not installed in the venv"
    bad = write(tmp_path, json.dumps(bundle([patient("a"), patient("b")])))
    done = subprocess.run([script, "evaluate", "--bundle", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "error" in done.stderr
    good = write(tmp_path, json.dumps(bundle(eligible())), "good.json")
    done = subprocess.run([script, "evaluate", "--bundle", str(good), "--as-of", "2026-06-15", "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "likely-eligible"


def test_json_output_matches_the_contract(tmp_path, capsys):
    resources = eligible() + [condition("A41.9", id="sepsis"), ecog(9, 1, id="broken")]
    code, out, err = run(["evaluate", "--bundle", str(write(tmp_path, bundle(resources, "transaction"))),
                          "--as-of", "2026-06-15", "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert set(data) <= {"trial", "patient", "asOf", "verdict", "criteria", "facts", "notes"}
    assert {"trial", "patient", "asOf", "verdict", "criteria", "facts"} <= set(data)
    assert data["trial"] == "NCT05271110"
    assert data["patient"] == "Patient/p1"
    assert data["asOf"] == "2026-06-15"
    assert data["verdict"] == "needs-review"
    assert [c["id"] for c in data["criteria"]] == list(CRITERIA_IDS)
    for c in data["criteria"]:
        assert c["status"] in STATUSES
        assert {"id", "type", "automated", "status", "reason", "evidence"} <= set(c)
    assert {c["id"]: c["status"] for c in data["criteria"]}["active-infection"] == "unknown"
    assert any("Observation/broken" in n for n in data["notes"])


def test_text_output_shows_every_criterion(tmp_path, capsys):
    code, out, err = run(["evaluate", "--bundle", str(write(tmp_path, bundle(eligible()))), "--as-of", "2026-06-15",
                          "--format", "text"], capsys)
    assert code == 0, err
    assert "Verdict: likely-eligible" in out
    lines = out.splitlines()
    for criterion in CRITERIA_IDS:
        assert any(line.split()[1:2] == [criterion] or f" {criterion} " in line for line in lines), criterion


def test_an_entry_whose_resource_is_not_an_object_is_noted(tmp_path, capsys):
    data = bundle(eligible())
    data["entry"].append({"fullUrl": "urn:uuid:x", "resource": "not a resource"})
    code, out, err = run(["evaluate", "--bundle", str(write(tmp_path, data)), "--as-of", "2026-06-15",
                          "--format", "json"], capsys)
    assert code == 0, err
    assert any("not a FHIR resource" in n for n in json.loads(out).get("notes", []))


def test_non_dict_bundle_entries_are_noted_not_fatal(tmp_path, capsys):
    data = bundle(eligible())
    data["entry"] += ["garbage", 7]
    code, out, err = run(["evaluate", "--bundle", str(write(tmp_path, data)), "--as-of", "2026-06-15",
                          "--format", "json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["verdict"] == "likely-eligible"
    assert any("not a FHIR resource" in n for n in result.get("notes", []))


def test_bundle_with_urn_uuid_references(tmp_path, capsys):
    resources = eligible()
    entries = []
    for r in resources:
        r = json.loads(json.dumps(r))
        if "subject" in r:
            r["subject"] = {"reference": "urn:uuid:3c1a9a4e-0000-4000-8000-000000000001"}
        full_url = ("urn:uuid:3c1a9a4e-0000-4000-8000-000000000001" if r["resourceType"] == "Patient"
                    else f"urn:uuid:{r['resourceType']}-{r['id']}")
        entries.append({"fullUrl": full_url, "resource": r})
    data = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    code, out, err = run(["evaluate", "--bundle", str(write(tmp_path, data)), "--as-of", "2026-06-15",
                          "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["verdict"] == "likely-eligible"


@pytest.mark.parametrize("module", ["cds_service", "cds_service.cli"])
def test_module_entry_points_exit_2_on_a_usage_error(tmp_path, module) -> None:
    not_a_bundle = tmp_path / "patient.json"
    not_a_bundle.write_text('{"resourceType": "Patient"}')
    done = subprocess.run([sys.executable, "-m", module, "evaluate", "--bundle", str(not_a_bundle)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not a FHIR Bundle" in done.stderr
