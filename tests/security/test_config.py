"""TRIALCDS_* security settings: parsed strictly, production start refused when incomplete."""

from __future__ import annotations

import json

import pytest

from cds_service.security.config import ConfigError, load_security_config, production_problems


def test_defaults():
    config = load_security_config({})
    assert config.clients == () and config.public_url is None and config.fhir_allowlist == ()
    assert config.max_body_bytes == 5 * 1024 * 1024
    assert config.clock_skew == 60 and config.max_lifetime == 300 and config.jwks_refetch_interval == 60
    assert len(production_problems(config)) == 2


def test_full_configuration(tmp_path):
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"clients": [{"iss": "https://ehr/", "jwks": {"keys": []}}]}))
    config = load_security_config({
        "TRIALCDS_CLIENTS_FILE": str(clients), "TRIALCDS_PUBLIC_URL": "https://cds.example.org/",
        "TRIALCDS_FHIR_ALLOWLIST": "https://ehr.example.org/fhir", "TRIALCDS_MAX_BODY_BYTES": "100000",
        "TRIALCDS_FHIR_MAX_PAGES": "5", "TRIALCDS_FHIR_MAX_RESOURCES": "50", "TRIALCDS_JWT_CLOCK_SKEW": "30",
    })
    assert production_problems(config) == []
    assert config.public_url == "https://cds.example.org"
    assert config.expected_audience("/cds-services/x") == "https://cds.example.org/cds-services/x"
    assert (config.max_body_bytes, config.fhir_max_pages, config.fhir_max_resources, config.clock_skew) == (
        100000, 5, 50, 30)


@pytest.mark.parametrize("env", [
    {"TRIALCDS_CLIENTS_FILE": "/nonexistent/clients.json"},
    {"TRIALCDS_PUBLIC_URL": "https://user:pw@cds.example.org"},
    {"TRIALCDS_PUBLIC_URL": "cds.example.org"},
    {"TRIALCDS_PUBLIC_URL": "https://cds.example.org/?x=1"},
    {"TRIALCDS_FHIR_ALLOWLIST": "https://a.example.org.,ftp://b"},
    {"TRIALCDS_MAX_BODY_BYTES": "lots"},
    {"TRIALCDS_MAX_BODY_BYTES": "10"},
    {"TRIALCDS_FHIR_MAX_PAGES": "0"},
    {"TRIALCDS_JWKS_REFETCH_INTERVAL": "inf"},
])
def test_bad_settings_are_refused(env):
    with pytest.raises(ConfigError):
        load_security_config(env)


def test_unreadable_clients_file(tmp_path):
    path = tmp_path / "clients.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        load_security_config({"TRIALCDS_CLIENTS_FILE": str(path)})
