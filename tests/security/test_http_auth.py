"""Client authentication through the HTTP endpoints: every failure is the same bare 401."""

from __future__ import annotations

import time

import pytest

from tests.security.conftest import FEEDBACK_PATH, PUBLIC_URL, SERVICE_PATH, auth_header, hook_body
from tests.security.keys import ec_signer


def test_discovery_stays_open(client):
    assert client.get("/cds-services").status_code == 200


def test_valid_token_gets_cards(client, signer, bundle, trial):
    response = client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=auth_header(signer))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"]


def test_token_with_audience_array_is_accepted(client, signer, bundle, trial):
    headers = auth_header(signer, aud=["https://elsewhere.example.org", PUBLIC_URL + SERVICE_PATH])
    assert client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=headers).status_code == 200




@pytest.mark.parametrize("case", [
    "missing", "garbage", "basic", "expired", "not-yet-valid", "wrong-aud", "discovery-aud", "unknown-iss",
    "wrong-key", "missing-jti", "alg-none", "lifetime",
])
def test_bad_credentials_get_a_bare_401(client, signer, bundle, trial, case):
    # The clock is read here, not at import: the suite runs for minutes, and a "not yet valid" token
    # minted at collection time would have become valid by the time this test runs.
    NOW = int(time.time())
    impostor = ec_signer(kid=signer.kid)
    headers = {
        "missing": {},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "expired": auth_header(signer, iat=NOW - 600, exp=NOW - 300),
        "not-yet-valid": auth_header(signer, iat=NOW + 600, exp=NOW + 700),
        "wrong-aud": auth_header(signer, aud="https://cds.example.org/cds-services/other"),
        "discovery-aud": auth_header(signer, aud=PUBLIC_URL + "/cds-services"),
        "unknown-iss": auth_header(signer, iss="https://intruder.example.net/"),
        "wrong-key": auth_header(impostor),
        "missing-jti": {"Authorization": f"Bearer {signer.token(aud=PUBLIC_URL + SERVICE_PATH, drop=('jti',))}"},
        "alg-none": {"Authorization": "Bearer eyJhbGciOiJub25lIiwia2lkIjoiZWhyLTIwMjYiLCJ0eXAiOiJKV1QifQ."
                                      "eyJpc3MiOiJodHRwczovL2Voci5leGFtcGxlLm9yZy8ifQ."},
        "lifetime": auth_header(signer, iat=NOW, exp=NOW + 3600),
    }[case]
    response = client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=headers)
    assert response.status_code == 401
    assert response.get_data() == b""  # no hint why


def test_jku_header_is_ignored_with_inline_keys(client, signer, bundle, trial):
    # What the CDS Hooks sandbox sends: a jku naming its own key endpoint. The inline keys decide.
    good = signer.token(aud=PUBLIC_URL + SERVICE_PATH, headers={"jku": "https://sandbox.example.net/jwks"})
    forged = ec_signer(kid=signer.kid).token(aud=PUBLIC_URL + SERVICE_PATH,
                                             headers={"jku": "https://sandbox.example.net/jwks"})
    body = hook_body(bundle, trial)
    assert client.post(SERVICE_PATH, json=body, headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert client.post(SERVICE_PATH, json=body, headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_replayed_token_is_refused_the_second_time(client, signer, bundle, trial):
    headers = auth_header(signer)
    assert client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=headers).status_code == 200
    second = client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=headers)
    assert second.status_code == 401 and second.get_data() == b""


def test_feedback_needs_a_token_too(client, signer):
    body = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z",
                          "overrideReason": {"userComment": "x"}}]}
    assert client.post(FEEDBACK_PATH, json=body).status_code == 401
    # Either the service endpoint or the exact feedback URL is a valid audience.
    assert client.post(FEEDBACK_PATH, json=body, headers=auth_header(signer)).status_code == 200
    assert client.post(FEEDBACK_PATH, json=body, headers=auth_header(signer, path=FEEDBACK_PATH)).status_code == 200


def test_audience_comes_from_the_public_url_not_the_host_header(client, signer, bundle, trial):
    headers = auth_header(signer, aud="https://attacker.example.net" + SERVICE_PATH)
    headers["Host"] = "attacker.example.net"
    assert client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=headers,
                       base_url="https://attacker.example.net").status_code == 401


def test_tenant_mismatch_is_refused(make_app, tmp_path, signer, bundle, trial):
    import json

    from tests.security.keys import ISS
    path = tmp_path / "tenant-clients.json"
    path.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": signer.jwks(), "tenant": "hospital-a"}]}))
    client = make_app(TRIALCDS_CLIENTS_FILE=str(path)).test_client()
    assert client.post(SERVICE_PATH, json=hook_body(bundle, trial),
                       headers=auth_header(signer, tenant="hospital-b")).status_code == 401
    assert client.post(SERVICE_PATH, json=hook_body(bundle, trial),
                       headers=auth_header(signer, tenant="hospital-a")).status_code == 200


def test_dev_mode_keeps_authentication_off(make_app, bundle, trial):
    client = make_app(TRIALCDS_DEV=True).test_client()
    assert client.post(SERVICE_PATH, json=hook_body(bundle, trial)).status_code == 200
