"""Every failure leaves as the contract says: 400 / 404 / 412 / 403 with an OperationOutcome, a bare
401, and never a stack trace."""

from __future__ import annotations

import pytest

from cds_service.errors import AuthenticationFailed, ForbiddenFhirServer

from .helpers import FEEDBACK_URL, SERVICE_URL, hook_request, is_operation_outcome


@pytest.fixture
def body(bundles, trial):
    return hook_request(bundles["p01-eligible-gem-nabpac"], trial)


def assert_outcome(response, status: int, words: str = "") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    outcome = response.get_json()
    assert is_operation_outcome(outcome), outcome
    assert words.lower() in outcome["issue"][0]["diagnostics"].lower()
    return outcome


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", b"\xff\xfe"])
def test_malformed_json_is_400(client, raw):
    response = client.post(SERVICE_URL, data=raw, content_type="application/json")
    outcome = assert_outcome(response, 400, "not valid JSON")
    assert outcome["issue"][0]["code"] == "invalid"


def test_missing_hook_instance_is_400(client, body):
    del body["hookInstance"]
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "hookInstance")


def test_missing_patient_id_is_400(client, body):
    del body["context"]["patientId"]
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "context.patientId")


def test_missing_context_is_400(client, body):
    del body["context"]
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "context")


def test_patient_id_that_is_not_a_fhir_id_is_400(client, body):
    body["context"]["patientId"] = "123&_include=*"  # would otherwise end up in a query URL
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "context.patientId")


def test_wrong_hook_is_400(client, body):
    body["hook"] = "order-sign"
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "patient-view")


def test_json_that_is_not_an_object_is_400(client):
    assert_outcome(client.post(SERVICE_URL, json=[1, 2, 3]), 400)


def test_validation_errors_never_echo_values(client, body):
    body["fhirServer"] = "http://127.0.0.1:1/fhir"
    body["fhirAuthorization"] = {"access_token": ["secret-token-value"], "token_type": "Bearer"}
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    assert "secret-token-value" not in response.get_data(as_text=True)


def test_unknown_service_is_404(client, body):
    response = client.post("/cds-services/no-such-trial", json=body)
    assert_outcome(response, 404, "no such CDS service")
    assert b"no-such-trial" not in response.get_data()  # the caller's text is not echoed (issue 11)
    assert_outcome(client.post("/cds-services/no-such-trial/feedback", json={"feedback": []}), 404)


def test_unknown_path_is_404_operation_outcome(client):
    assert_outcome(client.get("/nowhere"), 404)


def test_wrong_method_is_405_operation_outcome(client):
    assert_outcome(client.get(SERVICE_URL), 405)


def test_missing_data_without_fhir_server_is_412(client, bundles, trial):
    body = hook_request(bundles["p01-eligible-gem-nabpac"], trial, keys={"patient", "conditions"})
    outcome = assert_outcome(client.post(SERVICE_URL, json=body), 412, "no fhirServer")
    assert "observations" in outcome["issue"][0]["diagnostics"]


def test_operation_outcome_in_prefetch_without_fhir_server_is_412(client, body):
    body["prefetch"]["observations"] = {"resourceType": "OperationOutcome",
                                        "issue": [{"severity": "error", "code": "timeout"}]}
    assert_outcome(client.post(SERVICE_URL, json=body), 412, "observations")


def test_paged_prefetch_without_fhir_server_is_412(client, body):
    body["prefetch"]["conditions"]["link"] = [{"relation": "next", "url": "https://ehr.example/fhir?page=2"}]
    assert_outcome(client.post(SERVICE_URL, json=body), 412, "more pages")


def test_production_default_refuses_every_caller_with_a_bare_401(make_app, body):
    client = make_app(TRIALCDS_DEV=False).test_client()
    for url, payload in ((SERVICE_URL, body), (FEEDBACK_URL, {"feedback": []})):
        response = client.post(url, json=payload)
        assert response.status_code == 401
        assert response.get_data() == b""
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_authentication_seam_sees_the_request_and_the_service_audience(app, client, body):
    seen = []

    def authenticate(request, audience):
        seen.append((request.path, audience, request.headers.get("Authorization")))
        raise AuthenticationFailed("nope")

    app.extensions["trialcds.authenticate"] = authenticate
    headers = {"Authorization": "Bearer a.jwt.here"}
    assert client.post(SERVICE_URL, json=body, headers=headers).status_code == 401
    assert client.post(FEEDBACK_URL, json={"feedback": []}, headers=headers).status_code == 401
    assert seen == [(SERVICE_URL, "http://localhost/cds-services/nct05271110", "Bearer a.jwt.here"),
                    (FEEDBACK_URL, "http://localhost/cds-services/nct05271110", "Bearer a.jwt.here")]


def test_authentication_runs_before_anything_else(app, client):
    app.extensions["trialcds.authenticate"] = lambda request, audience: (_ for _ in ()).throw(AuthenticationFailed())
    assert client.post("/cds-services/unknown", data=b"{broken").status_code == 401


def test_public_url_sets_the_audience(make_app, body):
    app = make_app(TRIALCDS_PUBLIC_URL="https://cds.example.org/")
    seen = []
    app.extensions["trialcds.authenticate"] = lambda request, audience: seen.append(audience)
    app.test_client().post(SERVICE_URL, json=body)
    assert seen == ["https://cds.example.org/cds-services/nct05271110"]


def test_fhir_policy_refuses_before_any_connection(app, client, body):
    calls = []

    def policy(url):
        calls.append(url)
        raise ForbiddenFhirServer("fhirServer is not allowed")

    app.extensions["trialcds.fhir_policy"] = policy
    body["fhirServer"] = "https://ehr.example/fhir"
    assert_outcome(client.post(SERVICE_URL, json=body), 403, "not allowed")
    assert calls == ["https://ehr.example/fhir"]


# With the security module installed, dev mode allows loopback plus TRIALCDS_FHIR_ALLOWLIST — not
# any https host (tests/security/test_ssrf_and_limits.py covers the allowlist itself).
@pytest.mark.parametrize("url, allowed", [
    ("http://127.0.0.1:1/fhir", True), ("http://localhost:1/fhir", True), ("https://ehr.example/fhir", False),
    ("http://ehr.example/fhir", False), ("http://10.0.0.1/fhir", False)])
def test_dev_fhir_policy_allows_loopback_not_any_https(client, body, url, allowed):
    body["fhirServer"] = url
    status = client.post(SERVICE_URL, json=body).status_code
    assert (status != 403) is allowed


def test_production_fhir_policy_is_https_only(make_app, body):
    app = make_app(TRIALCDS_DEV=False)
    app.extensions["trialcds.authenticate"] = lambda request, audience: None
    body["fhirServer"] = "http://127.0.0.1:1/fhir"
    assert_outcome(app.test_client().post(SERVICE_URL, json=body), 403)


def test_unexpected_errors_are_500_without_a_stack_trace(app, client, body):
    def explode(request, audience):
        raise RuntimeError("internal detail /srv/secret/path.py line 42")

    app.extensions["trialcds.authenticate"] = explode
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post(SERVICE_URL, json=body)
    outcome = assert_outcome(response, 500)
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret" not in text and "RuntimeError" not in text
    assert outcome["issue"][0]["code"] == "exception"


def test_oversized_body_is_413_operation_outcome(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert_outcome(client.post(SERVICE_URL, data=b"{" + b" " * 2000 + b"}", content_type="application/json"), 413)


@pytest.mark.parametrize("broken", [
    {"resourceType": "Bundle", "type": "searchset", "entry": 5},
    {"resourceType": "Bundle", "type": "searchset", "entry": [], "link": {"relation": "next"}},
    "not a resource", 42, ["a", "list"]])
def test_unreadable_prefetch_value_counts_as_missing(client, body, broken):
    body["prefetch"]["conditions"] = broken
    response = client.post(SERVICE_URL, json=body)
    assert_outcome(response, 412, "conditions")


def test_malformed_resources_in_prefetch_are_skipped_and_noted(client, body):
    body["prefetch"]["conditions"]["entry"].append({"resource": {"resourceType": "Condition", "id": {"x": 1},
                                                                 "code": "not a CodeableConcept"}})
    body["prefetch"]["procedures"]["entry"].append({"resource": {"resourceType": "Procedure", "id": "bad-proc",
                                                                 "subject": {"reference": "Patient/p01-eligible-gem-nabpac"},
                                                                 "status": ["completed"]}})
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    evaluation = response.get_json()["cards"][0]["extension"]["trialcds.eligibility"]
    assert evaluation["verdict"] == "likely-eligible"
    assert any("bad-proc" in note and "malformed" in note for note in evaluation["notes"])
