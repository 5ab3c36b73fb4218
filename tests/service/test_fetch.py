"""Record gathering against a real (tiny, local) HTTP FHIR server: missing prefetch keys are fetched
with the EHR's token, pages are followed, and anything short of the whole record is a 412 in time."""

from __future__ import annotations

import socket
import time

import pytest

from cds_service.record import gather_record, render_template, same_base
from cds_service.seeding import answer_template, load_expected, patient_id

from .fhir_server import FhirTestServer
from .helpers import CARD_VERDICTS, SERVICE_URL, hook_request, is_operation_outcome

TOKEN = "test-access-token-1f2e3d"
SLUGS = sorted(load_expected()["patients"])


def with_server(body: dict, server: FhirTestServer, token: str | None = TOKEN) -> dict:
    body["fhirServer"] = server.base_url
    if token:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "user/*.read", "subject": "trialcds"}
    return body


def verdict_of(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    return cards[0]["extension"]["trialcds.eligibility"]["verdict"] if cards else "not-eligible"


@pytest.fixture
def server(bundles):
    with FhirTestServer(bundles, page_size=3, token=TOKEN) as running:
        yield running


def test_every_seed_patient_fetched_without_prefetch_gets_its_verdict(client, bundles, trial, server, expected):
    for slug in SLUGS:
        body = with_server(hook_request(bundles[slug], trial, prefetch={}), server)
        want = expected[slug]["verdict"]
        assert verdict_of(client.post(SERVICE_URL, json=body)) == (want if want in CARD_VERDICTS else "not-eligible"), slug


def test_fetch_sends_the_bearer_token_and_follows_pages(client, bundles, trial, server):
    slug = "p07-many-observations"
    body = with_server(hook_request(bundles[slug], trial, keys={"patient", "conditions"}), server)
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    assert server.requests and {r["authorization"] for r in server.requests} == {f"Bearer {TOKEN}"}
    paths = server.paths()
    assert not any(p.startswith("/fhir/Patient") or p.startswith("/fhir/Condition") for p in paths), \
        "prefetched keys must not be fetched again"
    assert any(p.startswith("/fhir/Observation?") and "patient=" in p for p in paths)
    assert any("_getpages=" in p for p in paths), "a multi-page search must be followed to its end"


def test_gather_record_reports_pages_in_its_notes(bundles, trial, server):
    bundle = bundles["p07-many-observations"]
    context = {"patientId": patient_id(bundle)}
    record = gather_record(trial.service.prefetch, context, {}, server.base_url, TOKEN, deadline_s=5)
    observations = [r for r, _ in record.resources if r["resourceType"] == "Observation"]
    expected_observations = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert 3 < len(observations) <= len(expected_observations)
    resources = [e["resource"] for e in bundle["entry"]]
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    template = render_template(trial.service.prefetch["observations"], context)
    entries = len(answer_template(template, resources, by_ref)["entry"])  # matches and _includes
    note = next(n for n in record.notes if n.startswith("fetched observations"))
    assert note == f"fetched observations: {-(-entries // 3)} pages"  # ceil: page size 3
    ids = [(r["resourceType"], r.get("id")) for r, _ in record.resources]
    assert len(ids) == len(set(ids)), "resources included by several searches are kept once"


def test_only_absent_and_failed_keys_are_fetched(client, bundles, trial, server):
    bundle = bundles["p01-eligible-gem-nabpac"]
    body = with_server(hook_request(bundle, trial), server)
    body["prefetch"]["procedures"] = {"resourceType": "OperationOutcome",
                                      "issue": [{"severity": "error", "code": "timeout"}]}
    body["prefetch"]["imagingStudies"] = None  # "nothing there": must not be fetched
    del body["prefetch"]["medicationRequests"]
    assert client.post(SERVICE_URL, json=body).status_code == 200
    fetched = {p.split("?")[0] for p in server.paths() if "_getpages" not in p}
    assert fetched == {"/fhir/Procedure", "/fhir/MedicationRequest"}


def test_prefetched_searchset_with_next_link_is_followed(client, bundles, trial, server, expected):
    slug = "p01-eligible-gem-nabpac"
    bundle = bundles[slug]
    body = with_server(hook_request(bundle, trial), server)
    full = body["prefetch"]["observations"]
    # The EHR paginated its prefetch: first page inline, the rest on its server.
    status, first_page = server.search("Observation", trial.service.prefetch["observations"].replace(
        "Observation?", "").replace("{{context.patientId}}", patient_id(bundle)), {"patient": [patient_id(bundle)]})
    assert status == 200 and any(link["relation"] == "next" for link in first_page["link"])
    body["prefetch"]["observations"] = first_page
    assert len(first_page["entry"]) < len(full["entry"])
    assert verdict_of(client.post(SERVICE_URL, json=body)) == expected[slug]["verdict"]
    assert any("_getpages=" in p for p in server.paths())


def test_next_link_to_another_host_is_not_followed(client, bundles, trial, server):
    body = with_server(hook_request(bundles["p01-eligible-gem-nabpac"], trial), server)
    body["prefetch"]["conditions"]["link"] = [
        {"relation": "next", "url": "http://attacker.example/fhir?_getpages=x"}]
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert "outside fhirServer" in response.get_json()["issue"][0]["diagnostics"]
    assert server.requests == []


def test_server_401_is_412(client, bundles, trial, server):
    body = with_server(hook_request(bundles["p01-eligible-gem-nabpac"], trial, keys={"patient"}), server,
                       token="wrong-token")
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert is_operation_outcome(response.get_json())
    assert "401" in response.get_json()["issue"][0]["diagnostics"]
    assert "wrong-token" not in response.get_data(as_text=True)


def test_server_error_is_412(client, bundles, trial):
    with FhirTestServer(bundles, status=500) as failing:
        body = with_server(hook_request(bundles["p01-eligible-gem-nabpac"], trial, keys={"patient"}), failing)
        response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert is_operation_outcome(response.get_json())


def test_server_that_is_down_is_412_at_once(client, bundles, trial):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    body = hook_request(bundles["p01-eligible-gem-nabpac"], trial, keys={"patient"})
    body["fhirServer"] = f"http://127.0.0.1:{port}/fhir"
    started = time.monotonic()
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert "could not be reached" in response.get_json()["issue"][0]["diagnostics"]
    assert time.monotonic() - started < 2


def test_server_that_hangs_is_412_within_the_deadline(make_app, bundles, trial):
    client = make_app(TRIALCDS_FETCH_DEADLINE=1.0).test_client()
    with FhirTestServer(bundles, hang=True) as hanging:
        body = with_server(hook_request(bundles["p01-eligible-gem-nabpac"], trial, keys={"patient"}), hanging)
        started = time.monotonic()
        response = client.post(SERVICE_URL, json=body)
        elapsed = time.monotonic() - started
    assert response.status_code == 412, response.get_data(as_text=True)
    assert is_operation_outcome(response.get_json())
    assert 0.9 <= elapsed < 1.0 + 0.75, elapsed


def test_missing_patient_on_the_server_is_412(client, bundles, trial, server):
    body = with_server(hook_request(bundles["p01-eligible-gem-nabpac"], trial, keys={"conditions"}), server)
    body["context"]["patientId"] = "not-on-this-server"
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert "patient" in response.get_json()["issue"][0]["diagnostics"]


def test_render_template_fills_context_tokens():
    context = {"patientId": "p-1", "userId": "Practitioner/dr-9", "encounterId": "e.1"}
    assert render_template("Condition?patient={{context.patientId}}", context) == "Condition?patient=p-1"
    assert render_template("Encounter/{{ context.encounterId }}", context) == "Encounter/e.1"
    assert render_template("Practitioner/{{userPractitionerId}}", context) == "Practitioner/dr-9"
    with pytest.raises(Exception, match="userPatientId"):
        render_template("Patient/{{userPatientId}}", context)


@pytest.mark.parametrize("url, inside", [
    ("https://ehr.example/fhir?_getpages=1", True),
    ("https://ehr.example/fhir/Observation?page=2", True),
    ("https://EHR.example:443/fhir/Observation", True),
    ("https://ehr.example/fhirx/Observation", False),
    ("https://ehr.example.attacker.org/fhir", False),
    ("http://ehr.example/fhir/Observation", False),
    ("https://ehr.example:8443/fhir", False),
    ("https://attacker.example/?u=https://ehr.example/fhir", False)])
def test_same_base(url, inside):
    assert same_base(url, "https://ehr.example/fhir") is inside
