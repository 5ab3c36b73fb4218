"""What the logs say: one JSON line per hook call, and never a token, a JWT or patient data."""

from __future__ import annotations

import io
import json
import logging

import pytest

from cds_service.security.request_log import JsonLineFormatter, RedactingFilter, redact
from tests.security.conftest import SERVICE_PATH, auth_header, hook_body
from tests.security.recorder import ConnectionRecorder

ACCESS_TOKEN = "ehr-access-token-5f2c9e-NEVER-LOG"


@pytest.fixture
def captured():
    """Everything logged anywhere, formatted the way ``trialcds serve`` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def secrets_of(bundle: dict, token: str) -> list[str]:
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    name = patient["name"][0]
    values = [token, *token.split("."), ACCESS_TOKEN, patient["id"], name["family"], *name["given"],
              patient["birthDate"], patient["identifier"][0]["value"]]
    # Every resource id of the chart too: "Observation/abc" in a log would point at the patient.
    values += [e["resource"]["id"] for e in bundle["entry"] if len(e["resource"].get("id", "")) >= 6]
    return values


def test_hook_calls_log_one_json_line_each_and_no_secrets(make_app, signer, bundle, trial, captured, caplog,
                                                          monkeypatch):
    caplog.set_level(logging.DEBUG)
    with ConnectionRecorder() as fhir:
        client = make_app(TRIALCDS_FHIR_ALLOWLIST=fhir.url).test_client()
        headers = auth_header(signer)
        token = headers["Authorization"].split()[1]
        ok = hook_body(bundle, trial, fhirServer=fhir.url,
                       fhirAuthorization={"access_token": ACCESS_TOKEN, "token_type": "Bearer"})
        assert client.post(SERVICE_PATH, json=ok, headers=headers).status_code == 200
        assert client.post(SERVICE_PATH, json=ok, headers=headers).status_code == 401  # replay

        fetch = hook_body(bundle, trial, fhirServer=fhir.url, fhirAuthorization={"access_token": ACCESS_TOKEN})
        del fetch["prefetch"]
        assert client.post(SERVICE_PATH, json=fetch, headers=auth_header(signer)).status_code == 412

        junk = hook_body(bundle, trial, fhirAuthorization={"access_token": ACCESS_TOKEN})
        junk["context"]["patientId"] = "Lindqvist Karin 1962-03-14"  # patient data in a bad field
        assert client.post(SERVICE_PATH, json=junk, headers=auth_header(signer)).status_code == 400

        import cds_service.hooks as hooks

        def explode(*args, **kwargs):
            raise ValueError(f"cannot read Patient/{bundle['entry'][0]['resource']['id']} token={token}")

        monkeypatch.setattr(hooks, "evaluate_resources", explode)
        assert client.post(SERVICE_PATH, json=ok | {"hookInstance": "b3f1c0de-0000-4000-8000-000000000001"},
                           headers=auth_header(signer)).status_code == 500

    text = captured.getvalue()
    for secret in secrets_of(bundle, token) + ["Lindqvist Karin"]:
        assert secret not in text, f"{secret!r} leaked into the logs"
    # Not even in the raw log records (whatever formatter an operator configures), exceptions aside.
    raw = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets_of(bundle, token):
        assert secret not in raw, f"{secret!r} leaked into a log message"

    lines = [json.loads(line) for line in text.splitlines()]
    hook_lines = [line for line in lines if line["event"] == "hook call"]
    assert [(line["status"], line["outcome"]) for line in hook_lines] == [
        (200, "cards"), (401, "unauthenticated"), (412, "data-unavailable"), (400, "invalid-request"), (500, "error")]
    first = hook_lines[0]
    assert first["hookInstance"] == ok["hookInstance"]
    assert first["service"] == "nct05271110"
    assert first["verdict"] == "likely-eligible"
    assert first["cards"] == 1
    assert {"total", "fetch", "evaluate"} <= set(first["timings_ms"])
    assert all(isinstance(v, float) for v in first["timings_ms"].values())
    # The 500's line names the exception type and where, not its message.
    error = next(line for line in lines if line.get("exception") == "ValueError")
    assert "frames" in error and "cannot read" not in json.dumps(error)


def test_caller_controlled_ids_are_logged_only_when_well_formed(make_app, signer, bundle, trial, captured):
    client = make_app().test_client()
    body = hook_body(bundle, trial, hookInstance='x"\n{"forged": "line"}')
    client.post(SERVICE_PATH, json=body, headers=auth_header(signer))
    line = [json.loads(raw) for raw in captured.getvalue().splitlines() if '"hook call"' in raw][0]
    assert line["hookInstance"] == "invalid"
    assert all(line.startswith("{") and line.endswith("}") for line in captured.getvalue().splitlines())


def test_redaction_of_stray_tokens():
    jwt_like = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
    assert "eyJ" not in redact(f"header was Bearer {jwt_like}")
    assert "abc123" not in redact("Authorization: Bearer abc123")
    assert "s3cr3t" not in redact('{"access_token": "s3cr3t"}')
