"""The whole path on every CI run: an EHR request WITHOUT prefetch → a real `trialcds serve --dev`
process → the real HAPI FHIR server → cards, for every seed patient.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from cds_service.criteria import evaluate_resources
from cds_service.seeding import anchor_date, load_expected, rebase_bundle, seed_bundles
from cds_service.trials import get_trial
from fhir_mappings import resources_of_bundle
from tests.serve_process import TRIALCDS, free_port, running_serve

pytestmark = pytest.mark.integration

SERVICE_ID = "nct05271110"
EXPECTED = load_expected()["patients"]


@pytest.fixture(scope="session")
def seeded_fhir(fhir_base_url: str) -> str:
    today = datetime.now(timezone.utc).date().isoformat()
    done = subprocess.run([TRIALCDS, "seed", "--fhir-server", fhir_base_url, "--as-of", today],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"loaded {len(seed_bundles())} patients" in done.stdout
    return fhir_base_url


@pytest.fixture(scope="session")
def service_url(tmp_path_factory) -> str:
    work = tmp_path_factory.mktemp("serve")
    env = dict(os.environ, TRIALCDS_DATABASE_URL=f"sqlite:///{work / 'it.sqlite'}", TRIALCDS_FETCH_DEADLINE="10")
    with running_serve(["--dev", "--workers", "2"], env, work / "serve.log") as (url, _):
        yield url


def call_hook(service_url: str, patient_id: str, fhir_server: str, timeout: float = 60) -> requests.Response:
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "fhirServer": fhir_server,
            "context": {"userId": "Practitioner/it", "patientId": patient_id}}
    return requests.post(f"{service_url}/cds-services/{SERVICE_ID}", json=body, timeout=timeout)


def verdict_of(response: requests.Response) -> tuple[str, dict | None]:
    cards = response.json()["cards"]
    if not cards:
        return "not-eligible", None
    evaluation = cards[0]["extension"]["trialcds.eligibility"]
    return evaluation["verdict"], evaluation


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_every_seed_patient_without_prefetch(service_url: str, seeded_fhir: str, slug: str) -> None:
    response = call_hook(service_url, slug, seeded_fhir)
    assert response.status_code == 200, response.text[:1000]
    verdict, evaluation = verdict_of(response)
    assert verdict == EXPECTED[slug]["verdict"]
    if evaluation is not None:
        got = {c["id"]: c["status"] for c in evaluation["criteria"]}
        assert got == EXPECTED[slug]["criteria"]


def test_observations_spanning_several_pages(service_url: str, seeded_fhir: str) -> None:
    """p07 has 93 matching Observations; the template pages by 50, so the service must follow `next`."""
    first_page = requests.get(f"{seeded_fhir}/Observation", params={
        "patient": "p07-many-observations", "_count": "50",
        "code": "http://loinc.org|89247-1,http://loinc.org|24108-3"}, timeout=60).json()
    assert any(link["relation"] == "next" for link in first_page.get("link", []))
    response = call_hook(service_url, "p07-many-observations", seeded_fhir)
    assert response.status_code == 200
    verdict, evaluation = verdict_of(response)
    assert verdict == EXPECTED["p07-many-observations"]["verdict"]
    # The service read every page only if its facts equal those of the whole bundle read offline.
    today = datetime.now(timezone.utc).date()
    bundle = rebase_bundle(seed_bundles()["p07-many-observations"], anchor_date(), today)
    offline = evaluate_resources(get_trial(), list(resources_of_bundle(bundle)), today).to_json()
    assert evaluation["facts"] == offline["facts"]
    assert evaluation["facts"]["ca19_9"]["baseline"] is not None


def test_fhir_server_down_gives_412_within_the_deadline(service_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/fhir"
    started = time.monotonic()
    response = call_hook(service_url, "p01-eligible-gem-nabpac", dead, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert elapsed < 10 + 2  # the deadline configured above, plus margin
