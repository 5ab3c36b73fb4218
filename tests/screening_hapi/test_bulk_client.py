"""The Bulk Data client's pure parts: which types a kick-off asks for, Retry-After, and the references
that bring the Medications a Patient-level export cannot carry (no server needed)."""

from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from cds_service.screening.bulk import plan_request, referenced_ids, retry_after_seconds
from cds_service.screening.reads import TrialReads
from cds_service.trials import get_trial


def test_the_kickoff_asks_for_the_types_the_trial_reads_and_no_other():
    reads = TrialReads.from_trial(get_trial("NCT05271110"))
    request = plan_request("http://fhir.example/r4/", None, reads.resource_types)
    assert set(request.exported_types) | set(request.referenced_types) == set(reads.resource_types)
    # a Patient-level export carries the Patient compartment only; the rest is read by reference
    assert "Medication" in request.referenced_types and "Medication" not in request.exported_types
    assert {"Patient", "Condition", "Observation"} <= set(request.exported_types)
    assert request.kickoff_url.startswith("http://fhir.example/r4/Patient/$export?_outputFormat=application/fhir%2Bndjson&_type=")
    assert request.kickoff_url.endswith("_type=" + ",".join(request.exported_types))


def test_group_and_system_level_kickoffs():
    group = plan_request("http://fhir.example", "clinic-7", ["Patient", "Medication"])
    assert "/Group/clinic-7/$export?" in group.kickoff_url and group.referenced_types == ("Medication",)
    system = plan_request("http://fhir.example", None, ["Patient", "Medication"], level="system")
    assert "/$export?" in system.kickoff_url and "/Patient/$export" not in system.kickoff_url
    assert system.exported_types == ("Medication", "Patient") and system.referenced_types == ()
    with pytest.raises(ValueError):
        plan_request("http://fhir.example", None, ["Patient"], level="group")


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(30.0)
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now.timestamp()) == 0.0


def test_referenced_medications_are_found_in_any_reference_form(tmp_path):
    lines = [
        {"resourceType": "MedicationRequest", "id": "a", "medicationReference": {"reference": "Medication/gem-1"}},
        {"resourceType": "MedicationStatement", "id": "b",
         "medicationReference": {"reference": "https://ehr.example/fhir/Medication/nab.2/_history/3"}},
        {"resourceType": "MedicationAdministration", "id": "c", "medicationReference": {"reference": "#contained"}},
        {"resourceType": "Observation", "id": "d", "note": [{"text": "Medication/not-a-reference"}]},
    ]
    (tmp_path / "MedicationRequest_0001.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))
    assert referenced_ids(tmp_path, "Medication") == ["gem-1", "nab.2"]
