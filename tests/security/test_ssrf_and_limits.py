"""No SSRF (refused before any connection), body cap, no stack traces."""

from __future__ import annotations

import socket

import pytest

from tests.security.conftest import SERVICE_PATH, auth_header, hook_body, is_operation_outcome
from tests.security.recorder import ConnectionRecorder


def fetch_body(bundle, trial, fhir_server: str) -> dict:
    """A call with no prefetch, so the service would have to query fhirServer."""
    body = hook_body(bundle, trial, fhirServer=fhir_server,
                     fhirAuthorization={"access_token": "ehr-secret-token", "token_type": "Bearer",
                                        "expires_in": 300, "scope": "patient/*.read", "subject": "cds"})
    del body["prefetch"]
    return body


@pytest.fixture
def socket_spy(monkeypatch):
    """Every outbound connect() and DNS lookup made by the service while the test runs."""
    calls: list[object] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        calls.append(("connect", address))
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        calls.append(("dns", host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_fhir_server_off_the_allowlist_is_refused_without_any_connection(client, signer, bundle, trial, socket_spy):
    with ConnectionRecorder() as recorder:
        response = client.post(SERVICE_PATH, json=fetch_body(bundle, trial, recorder.url), headers=auth_header(signer))
        assert response.status_code == 403
        assert is_operation_outcome(response.get_json())
        assert response.get_json()["issue"][0]["code"] == "forbidden"
        assert recorder.connections == 0
    assert socket_spy == []


@pytest.mark.parametrize("fhir_server", [
    "https://allowed.example.org.evil.com/fhir",
    "https://allowed.example.org@evil.com/fhir",
    "https://evil.com/allowed.example.org/fhir",
    "https://allowed.example.org/fhir-admin",
    "http://allowed.example.org/fhir",
    "http://169.254.169.254/latest/meta-data",
    "http://localhost:8080/fhir",
])
def test_lookalike_fhir_servers_are_refused(client, signer, bundle, trial, socket_spy, fhir_server):
    response = client.post(SERVICE_PATH, json=fetch_body(bundle, trial, fhir_server), headers=auth_header(signer))
    assert response.status_code == 403
    assert is_operation_outcome(response.get_json())
    assert "evil" not in response.get_data(as_text=True)
    assert socket_spy == []


def test_allowlisted_server_is_contacted(make_app, signer, bundle, trial):
    """The control experiment: the same recorder, allow-listed, does see the connection."""
    with ConnectionRecorder() as recorder:
        client = make_app(TRIALCDS_FHIR_ALLOWLIST=recorder.url).test_client()
        response = client.post(SERVICE_PATH, json=fetch_body(bundle, trial, recorder.url), headers=auth_header(signer))
        assert response.status_code == 412  # the recorder answers 503
        assert recorder.connections >= 1


def test_dev_mode_allows_loopback_http_only(make_app, bundle, trial, socket_spy):
    client = make_app(TRIALCDS_DEV=True, TRIALCDS_FHIR_ALLOWLIST="").test_client()
    with ConnectionRecorder() as recorder:
        assert client.post(SERVICE_PATH, json=fetch_body(bundle, trial, recorder.url)).status_code == 412
        assert recorder.connections >= 1
    socket_spy.clear()
    response = client.post(SERVICE_PATH, json=fetch_body(bundle, trial, "http://10.1.2.3/fhir"))
    assert response.status_code == 403
    assert socket_spy == []


def test_next_link_off_the_fhir_server_is_never_followed(make_app, signer, bundle, trial, socket_spy):
    with ConnectionRecorder() as fhir, ConnectionRecorder() as elsewhere:
        client = make_app(TRIALCDS_FHIR_ALLOWLIST=fhir.url).test_client()
        body = hook_body(bundle, trial, fhirServer=fhir.url, fhirAuthorization={"access_token": "ehr-secret-token"})
        body["prefetch"]["conditions"]["link"] = [{"relation": "next", "url": elsewhere.url + "/Condition?page=2"}]
        response = client.post(SERVICE_PATH, json=body, headers=auth_header(signer))
        assert response.status_code == 412
        assert is_operation_outcome(response.get_json())
        assert fhir.connections == 0 and elsewhere.connections == 0


def test_oversized_body_gets_413_with_an_operation_outcome(client, signer, bundle, trial):
    body = hook_body(bundle, trial)
    body["extension"] = {"padding": "x" * (5 * 1024 * 1024)}
    response = client.post(SERVICE_PATH, json=body, headers=auth_header(signer))
    assert response.status_code == 413
    assert is_operation_outcome(response.get_json())


def test_body_cap_is_configurable(make_app, signer, bundle, trial):
    client = make_app(TRIALCDS_MAX_BODY_BYTES="20000").test_client()
    body = hook_body(bundle, trial)
    body["extension"] = {"padding": "x" * 30000}
    assert client.post(SERVICE_PATH, json=body, headers=auth_header(signer)).status_code == 413


@pytest.mark.parametrize("size, status", [(20000, 400), (20001, 413), (200000, 413)])
def test_chunked_body_over_the_cap_gets_413_not_a_truncated_400(make_app, signer, size, status):
    """A body without Content-Length, as gunicorn hands a chunked one over (wsgi.input_terminated)."""
    import io
    client = make_app(TRIALCDS_MAX_BODY_BYTES="20000").test_client()
    response = client.post(SERVICE_PATH, input_stream=io.BytesIO(b"x" * size), content_type="application/json",
                           headers={**auth_header(signer), "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == status
    assert is_operation_outcome(response.get_json())


def test_internal_error_leaks_no_stack_trace(client, signer, bundle, trial, monkeypatch):
    import cds_service.hooks as hooks

    def explode(*args, **kwargs):
        raise RuntimeError("boom: Patient/p01 secret-detail")

    monkeypatch.setattr(hooks, "evaluate_resources", explode)
    response = client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=auth_header(signer))
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert is_operation_outcome(response.get_json())
    for leak in ("Traceback", "RuntimeError", "boom", "secret-detail", "hooks.py", 'File "'):
        assert leak not in text
