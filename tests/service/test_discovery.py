"""Discovery, health and CORS: what a CDS client (or a browser sandbox) sees before any hook call."""

from __future__ import annotations

from .helpers import SERVICE_URL, empty_values


def test_discovery_lists_the_trial_service(client, trial):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert [s["id"] for s in services] == ["nct05271110"]
    service = services[0]
    assert service["hook"] == "patient-view"
    assert service["title"] == trial.service.title
    assert service["description"] == trial.service.description
    assert service["usageRequirements"] == trial.service.usageRequirements
    assert service["prefetch"] == trial.service.prefetch
    assert service["version"] == "2.0.1"


def test_discovery_has_no_null_or_empty_fields(client):
    body = client.get("/cds-services").get_json()
    assert empty_values(body) == []
    allowed = {"hook", "title", "description", "id", "prefetch", "usageRequirements", "version"}
    assert set(body["services"][0]) <= allowed


def test_prefetch_templates_use_only_the_recommended_query_subset(client):
    allowed = {"patient", "code", "_count", "_sort", "_include"}
    for template in client.get("/cds-services").get_json()["services"][0]["prefetch"].values():
        path, _, query = template.partition("?")
        names = {pair.split("=", 1)[0] for pair in query.split("&") if pair}
        assert names <= allowed, template
        assert "{{context.patientId}}" in template


def test_healthz_checks_the_database(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    app.extensions["trialcds.engine"].dispose()
    app.extensions["trialcds.store"].engine = _broken_engine()
    response = client.get("/healthz")
    assert response.status_code == 503


def _broken_engine():
    from sqlalchemy import create_engine

    return create_engine("sqlite:////nonexistent-dir/never/there.sqlite")


def test_cors_preflight_is_answered_without_authentication(make_app):
    app = make_app(TRIALCDS_DEV=False)  # production default: every caller refused …
    client = app.test_client()
    response = client.options(SERVICE_URL, headers={
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200  # … but a browser's preflight carries no credentials
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    allowed_headers = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}


def test_cors_headers_on_answers_and_errors(client):
    assert client.get("/cds-services").headers["Access-Control-Allow-Origin"] == "*"
    assert client.post("/cds-services/nope", json={}).headers["Access-Control-Allow-Origin"] == "*"
