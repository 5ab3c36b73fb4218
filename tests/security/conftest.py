"""Fixtures for the security tests: a production-mode app (authentication on) with one trusted
client, the seed patients rebased to today, and token minting."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from cds_service.app import create_app
from cds_service.seeding import anchor_date, patient_id, prefetch_from_bundle, rebase_bundle, seed_bundles
from cds_service.trials import get_trial
from tests.security.keys import ISS, Signer, ec_signer

PUBLIC_URL = "https://cds.example.org"
SERVICE_PATH = "/cds-services/nct05271110"
FEEDBACK_PATH = SERVICE_PATH + "/feedback"
ALLOWED_FHIR = "https://allowed.example.org/fhir"


@pytest.fixture(scope="session")
def trial():
    return get_trial("nct05271110")


@pytest.fixture(scope="session")
def bundle() -> dict:
    today = datetime.now(timezone.utc).date()
    return rebase_bundle(seed_bundles()["p01-eligible-gem-nabpac"], anchor_date(), today)


@pytest.fixture(scope="session")
def signer() -> Signer:
    return ec_signer(kid="ehr-2026")


@pytest.fixture
def clients_file(tmp_path, signer):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": signer.jwks()}]}))
    return path


@pytest.fixture
def make_app(tmp_path, clients_file):
    def make(**config: Any):
        settings: dict[str, Any] = {
            "TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'trialcds.sqlite'}",
            "TRIALCDS_DB_UPGRADE": True,  # the test's new database is created (production would refuse it)
            "TRIALCDS_DEV": False,
            "TRIALCDS_PUBLIC_URL": PUBLIC_URL,
            "TRIALCDS_CLIENTS_FILE": str(clients_file),
            "TRIALCDS_FHIR_ALLOWLIST": ALLOWED_FHIR,
        }
        settings.update(config)
        return create_app(settings)
    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def hook_body(bundle: dict, trial, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-test", "patientId": patient_id(bundle)},
        "prefetch": prefetch_from_bundle(bundle, trial),
    }
    body.update(fields)
    return body


def auth_header(signer: Signer, path: str = SERVICE_PATH, **claims: Any) -> dict[str, str]:
    claims.setdefault("aud", PUBLIC_URL + path)
    return {"Authorization": f"Bearer {signer.token(**claims)}"}


def is_operation_outcome(body: Any) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" and bool(body.get("issue"))


# Fuzz cases run per family, reported once at the end of the session. Tests reach the dict through
# the fixture: pytest imports this conftest under its own module name.
FUZZ_COUNTS: dict[str, int] = {}


@pytest.fixture
def fuzz_counts() -> dict[str, int]:
    return FUZZ_COUNTS


def pytest_terminal_summary(terminalreporter) -> None:
    if FUZZ_COUNTS:
        terminalreporter.write_sep("-", "fuzz cases run")
        for family, count in FUZZ_COUNTS.items():
            terminalreporter.write_line(f"{family}: {count}")
        terminalreporter.write_line(f"total: {sum(FUZZ_COUNTS.values())}")
