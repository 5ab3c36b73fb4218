"""Spec revision 2 — code systems by URI or OID (one normaliser), ICD-10 with or without the dot, the
calendar date written in a timestamp, and the as-of date of a hook call in the site's time zone."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from cds_service.app import load_config
from cds_service.asof import site_today
from fhir_mappings import codes
from fhir_mappings.fhirjson import MalformedResource, codings, parse_date
from tests.core.builders import (
    cc, coding, condition, ecog, eligible, evaluate, imaging_study, med_statement, observation, status,
)

OIDS = {
    "urn:oid:2.16.840.1.113883.6.96": codes.SNOMED,
    "urn:oid:2.16.840.1.113883.6.1": codes.LOINC,
    "urn:oid:2.16.840.1.113883.6.90": codes.ICD10,
    "urn:oid:2.16.840.1.113883.6.3": codes.ICD10,
    "urn:oid:2.16.840.1.113883.6.88": codes.RXNORM,
    "urn:oid:2.16.840.1.113883.6.12": codes.CPT,
    "urn:oid:2.16.840.1.113883.6.73": codes.ATC,
    "urn:oid:2.16.840.1.113883.6.43.1": codes.ICDO3,
    "urn:oid:1.2.840.10008.2.16.4": codes.DICOM,
}
URIS = {
    "http://snomed.info/sct": codes.SNOMED, "http://loinc.org": codes.LOINC,
    "http://hl7.org/fhir/sid/icd-10-cm": codes.ICD10, "http://hl7.org/fhir/sid/icd-10": codes.ICD10,
    "http://www.nlm.nih.gov/research/umls/rxnorm": codes.RXNORM, "http://www.ama-assn.org/go/cpt": codes.CPT,
    "http://www.whocc.no/atc": codes.ATC, "http://terminology.hl7.org/CodeSystem/icd-o-3": codes.ICDO3,
    "http://dicom.nema.org/resources/ontology/DCM": codes.DICOM,
}


# --- one normaliser ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("system", "short"), list(OIDS.items()) + list(URIS.items()))
def test_every_system_by_uri_or_oid(system, short):
    assert codes.normalise_system(system) == short
    assert codings({"coding": [{"system": system, "code": "x"}]})[0].system == short


@pytest.mark.parametrize("variant", ["URN:OID:2.16.840.1.113883.6.96", "http://snomed.info/sct/", " http://snomed.info/sct ",
                                     "http://snomed.info/sct/731000124108"])
def test_spelling_variants_of_snomed(variant):
    assert codes.normalise_system(variant) == codes.SNOMED


def test_unknown_systems_keep_their_uri():
    assert codes.normalise_system("urn:oid:1.2.840.114350.1.13.0.1.7.2.707679") == "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"


def test_no_reader_compares_raw_system_strings():
    """Every mapping reads codings through fhirjson.codings (which normalises): no module but codes.py names a
    code-system URI or OID (that is how the DICOM OID came to be silently ignored)."""
    from pathlib import Path

    import fhir_mappings

    package = Path(fhir_mappings.__file__).parent
    offenders = []
    for path in package.glob("*.py"):
        if path.name == "codes.py":
            continue
        text = path.read_text(encoding="utf-8")
        for marker in ("snomed.info", "loinc.org", "urn:oid:", "sid/icd-10", "dicom.nema.org", "nlm.nih.gov", "whocc.no", "ama-assn.org"):
            if marker in text:
                offenders.append(f"{path.name}: {marker}")
    assert offenders == []


class TestOidSystemsThroughTheDecision:
    def test_conditions_under_oids(self):
        resources = eligible(
            pdac=condition("C25.0", "urn:oid:2.16.840.1.113883.6.90", onset=300, id="pdac"),
            liver_met=condition("94381002", "urn:oid:2.16.840.1.113883.6.96", onset=290, id="liver-met"))
        evaluation = evaluate(resources)
        assert status(evaluation, "pdac-diagnosis") == "pass"
        assert status(evaluation, "liver-metastases") == "pass"

    def test_ecog_under_the_loinc_oid(self):
        observed = observation("89247-1", "urn:oid:2.16.840.1.113883.6.1", on=5, valueInteger=3)
        assert status(evaluate(eligible(ecog=observed)), "ecog") == "fail"

    def test_chemotherapy_under_the_rxnorm_oid(self):
        chemo = med_statement(cc("12574", "urn:oid:2.16.840.1.113883.6.88"), 200, id="chemo")
        assert status(evaluate(eligible(chemo=chemo)), "progression") == "pass"

    def test_immunosuppressant_under_the_atc_oid(self):
        drug = cc("L04AD02", "urn:oid:2.16.840.1.113883.6.73")
        assert status(evaluate(eligible() + [med_statement(drug, 5)]), "immunosuppressants") == "fail"

    def test_imaging_modality_under_the_dicom_oid(self):
        study = imaging_study(None, 10) | {"modality": [coding("MR", "urn:oid:1.2.840.10008.2.16.4")]}
        assert status(evaluate(eligible(imaging=study)), "extrahepatic-metastases") == "pass"


# --- ICD-10 with or without the dot ----------------------------------------------------------------

@pytest.mark.parametrize(("pdac", "liver"), [("C250", "C787"), ("C25.0", "C78.7"), ("c25.0", "c787")])
def test_icd10_with_or_without_the_dot(pdac, liver):
    resources = eligible(pdac=condition(pdac, onset=300, id="pdac"), liver_met=condition(liver, onset=290, id="liver-met"))
    evaluation = evaluate(resources)
    assert status(evaluation, "pdac-diagnosis") == "pass"
    assert status(evaluation, "liver-metastases") == "pass"


def test_icd10_without_the_dot_for_an_excluded_range():
    # C77.2 (intra-abdominal nodes) is regional, C77.1 is distant: the dot-less codes keep that apart.
    assert codes.EXTRAHEPATIC_METASTASIS.code_matches(codes.Coding(codes.ICD10, "C771", ""))
    assert not codes.EXTRAHEPATIC_METASTASIS.code_matches(codes.Coding(codes.ICD10, "C772", ""))


# --- a timestamp's own calendar date ---------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-29T21:00:00-05:00", date(2026, 11, 29)),  # 02:00 UTC the next day: still the 29th
    ("2026-11-29T00:30:00+14:00", date(2026, 11, 29)),
    ("2026-11-29T23:59:59Z", date(2026, 11, 29)),
    ("2026-11-29T23:59:59.123456Z", date(2026, 11, 29)),
    ("2026-11-29T08:00:00.5+01:00", date(2026, 11, 29)),
    ("2026-11-29", date(2026, 11, 29)),
    ("2026-11", date(2026, 11, 1)),
    ("2026", date(2026, 1, 1)),
])
def test_parse_date_keeps_the_written_calendar_date(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["2026-13-01", "yesterday", "26-11-29", 20261129, "2026-02-30"])
def test_impossible_dates_are_malformed(value):
    with pytest.raises(MalformedResource):
        parse_date(value)


@pytest.mark.parametrize(("stamp", "expected"), [
    # as-of 2026-06-15 minus 90 days = 2026-03-17: the edge day counts whatever its offset.
    ("2026-03-17T23:30:00-05:00", "pass"), ("2026-03-17T00:10:00+09:00", "pass"),
    ("2026-03-16T23:59:59-12:00", "unknown"), ("2026-03-16T20:00:00Z", "unknown")])
def test_window_edge_with_offsets(stamp, expected):
    assert status(evaluate(eligible(ecog=ecog(1, stamp))), "ecog") == expected


def test_a_timestamp_on_the_as_of_date_late_evening_in_new_york_is_not_future():
    evaluation = evaluate(eligible(ecog=ecog(3, "2026-06-15T21:00:00-05:00")))
    assert status(evaluation, "ecog") == "fail"


def test_a_timestamp_on_the_next_day_is_future_and_ignored():
    evaluation = evaluate(eligible(ecog=[ecog(1, 20), ecog(3, "2026-06-16T00:30:00+02:00", id="tomorrow")]))
    assert status(evaluation, "ecog") == "pass"
    assert any("Observation/tomorrow" in n and "after the as-of date" in n for n in evaluation.notes)


# --- the as-of date in the site's time zone ---------------------------------------------------------

@pytest.mark.parametrize(("zone", "now", "expected"), [
    ("UTC", datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc), date(2026, 11, 29)),
    ("Europe/Stockholm", datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc), date(2026, 11, 30)),
    ("America/New_York", datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc), date(2026, 11, 29)),
    ("Pacific/Kiritimati", datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc), date(2026, 11, 30)),
    (None, datetime(2026, 11, 29, 23, 59, tzinfo=timezone.utc), date(2026, 11, 29)),
    ("", datetime(2026, 11, 29, 0, 0, tzinfo=timezone.utc), date(2026, 11, 29)),
])
def test_site_today(zone, now, expected):
    assert site_today(zone, now) == expected


def test_unknown_zone_is_a_clear_configuration_error():
    with pytest.raises(ValueError, match="TRIALCDS_TIMEZONE"):
        load_config(environ={"TRIALCDS_TIMEZONE": "Europe/Linkoping"})
    assert load_config(environ={"TRIALCDS_TIMEZONE": "Europe/Stockholm"})["TRIALCDS_TIMEZONE"] == "Europe/Stockholm"
    assert load_config(environ={})["TRIALCDS_TIMEZONE"] == "UTC"


@pytest.mark.parametrize(("zone", "expected"), [("Europe/Stockholm", date(2026, 11, 30)), ("UTC", date(2026, 11, 29)),
                                              (None, date(2026, 11, 29))])
def test_hook_call_decides_as_of_today_in_the_site_zone(monkeypatch, tmp_path, zone, expected):
    """A hook call at 23:30 UTC on 2026-11-29 is decided as of 2026-11-30 in Stockholm (clock frozen)."""
    import cds_service.hooks as hooks
    from cds_service.app import create_app
    from cds_service.seeding import prefetch_from_bundle, seed_bundles
    from cds_service.trials import get_trial

    frozen = datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc)

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen if tz is None else frozen.astimezone(tz)

    seen: list[date] = []
    real = hooks.evaluate_resources

    def spy(trial, resources, as_of, **kwargs):
        seen.append(as_of)
        return real(trial, resources, as_of, **kwargs)

    monkeypatch.setattr(hooks, "datetime", FrozenClock)
    monkeypatch.setattr(hooks, "evaluate_resources", spy)
    settings = {"TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'trialcds.sqlite'}", "TRIALCDS_DEV": True,
                "TRIALCDS_DB_UPGRADE": True}
    if zone is not None:
        settings["TRIALCDS_TIMEZONE"] = zone
    client = create_app(settings).test_client()
    bundle = seed_bundles()["p01-eligible-gem-nabpac"]
    patient_id = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    body = {"hook": "patient-view", "hookInstance": "4d7c1b0e-3a47-4b8e-9d51-0a2f3c7d9e11",
            "context": {"userId": "Practitioner/dr-test", "patientId": patient_id},
            "prefetch": prefetch_from_bundle(bundle, get_trial())}
    response = client.post("/cds-services/nct05271110", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert seen == [expected]
