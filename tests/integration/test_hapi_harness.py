"""Proves the HAPI FHIR test harness does what the other integration tests rely on:
R4, client-assigned ids via PUT in transactions, fresh searches, paging with
``_count`` and ``next`` links, ``_include``, ``_sort`` and token searches.

Ids are fixed (PUT), so re-running against a server that is still up from an
earlier run updates the same resources instead of adding more.
"""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.integration

PATIENT_ID = "harness-pat-1"
N_OBS = 130
LOINC = "http://loinc.org"
HBA1C = "4548-4"
GLUCOSE = "2345-7"
FHIR_JSON = "application/fhir+json"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def fhir(fhir_base_url):
    session = requests.Session()
    session.headers.update({"Accept": FHIR_JSON})
    yield session
    session.close()


def _transaction(fhir, base, entries):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    resp = fhir.post(base, json=bundle, headers={"Content-Type": FHIR_JSON}, timeout=TIMEOUT_S)
    assert resp.status_code == 200, resp.text[:2000]
    body = resp.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "transaction-response"
    assert len(body["entry"]) == len(entries)
    return body


def _put(resource):
    return {
        "fullUrl": f"{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def _obs_id(i: int) -> str:
    return f"harness-obs-{i:03d}"


@pytest.fixture(scope="module")
def patient_tx(fhir, fhir_base_url):
    patient = {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "name": [{"family": "Harness", "given": ["Hapi"]}],
        "gender": "female",
        "birthDate": "1961-04-12",
    }
    return _transaction(fhir, fhir_base_url, [_put(patient)])


@pytest.fixture(scope="module")
def observations(fhir, fhir_base_url, patient_tx):
    entries = []
    for i in range(N_OBS):
        code = HBA1C if i % 2 == 0 else GLUCOSE
        entries.append(
            _put(
                {
                    "resourceType": "Observation",
                    "id": _obs_id(i),
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "subject": {"reference": f"Patient/{PATIENT_ID}"},
                    # distinct, increasing timestamps so _sort=date has one right answer
                    "effectiveDateTime": f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00Z",
                    "valueQuantity": {"value": 5 + i / 100, "unit": "%"},
                }
            )
        )
    _transaction(fhir, fhir_base_url, entries)
    return {_obs_id(i) for i in range(N_OBS)}


def _links(bundle):
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def test_capability_statement_is_fhir_r4(fhir, fhir_base_url):
    resp = fhir.get(f"{fhir_base_url}/metadata", timeout=TIMEOUT_S)
    assert resp.status_code == 200
    cap = resp.json()
    assert cap["resourceType"] == "CapabilityStatement"
    assert cap["fhirVersion"] == "4.0.1"


def test_put_patient_in_transaction_then_read(fhir, fhir_base_url, patient_tx):
    status = patient_tx["entry"][0]["response"]["status"]
    assert status.split()[0] in {"200", "201"}, status
    resp = fhir.get(f"{fhir_base_url}/Patient/{PATIENT_ID}", timeout=TIMEOUT_S)
    assert resp.status_code == 200, resp.text[:500]
    patient = resp.json()
    assert patient["id"] == PATIENT_ID
    assert patient["name"][0]["family"] == "Harness"
    assert patient["birthDate"] == "1961-04-12"


def test_observation_paging_follows_next_links(fhir, fhir_base_url, observations):
    url = f"{fhir_base_url}/Observation"
    params = {"patient": PATIENT_ID, "_count": "50"}
    seen = []
    page_sizes = []
    for _ in range(20):  # bounded: 130 / 50 needs 3 pages
        resp = fhir.get(url, params=params, timeout=TIMEOUT_S)
        assert resp.status_code == 200, resp.text[:500]
        bundle = resp.json()
        assert bundle["type"] == "searchset"
        entries = bundle.get("entry", [])
        page_sizes.append(len(entries))
        seen.extend(e["resource"]["id"] for e in entries)
        nxt = _links(bundle).get("next")
        if len(page_sizes) == 1:
            assert nxt, "first page of 130 results with _count=50 has no next link"
        if not nxt:
            break
        url, params = nxt, None  # the next link carries its own query
    assert page_sizes == [50, 50, 30]
    assert len(seen) == len(set(seen)) == N_OBS
    assert set(seen) == observations


def test_count_200_returns_everything_in_one_page(fhir, fhir_base_url, observations):
    resp = fhir.get(
        f"{fhir_base_url}/Observation",
        params={"patient": PATIENT_ID, "_count": "200"},
        timeout=TIMEOUT_S,
    )
    assert resp.status_code == 200
    bundle = resp.json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == observations
    assert "next" not in _links(bundle)


def test_token_search_sort_and_include(fhir, fhir_base_url, observations):
    resp = fhir.get(
        f"{fhir_base_url}/Observation",
        params={
            "patient": PATIENT_ID,
            "code": f"{LOINC}|{HBA1C}",
            "_sort": "-date",
            "_include": "Observation:subject",
            "_count": "200",
        },
        timeout=TIMEOUT_S,
    )
    assert resp.status_code == 200, resp.text[:500]
    entries = resp.json()["entry"]
    matches = [e["resource"] for e in entries if e["search"]["mode"] == "match"]
    included = [e["resource"] for e in entries if e["search"]["mode"] == "include"]
    expected = [_obs_id(i) for i in reversed(range(0, N_OBS, 2))]  # HbA1c ones, newest first
    assert [o["id"] for o in matches] == expected
    assert all(o["code"]["coding"][0]["code"] == HBA1C for o in matches)
    assert [(p["resourceType"], p["id"]) for p in included] == [("Patient", PATIENT_ID)]
