"""Fixtures of the Bulk Data tests: the project's HAPI (``fhir_base_url``, as the integration tests
start it) loaded with this session's own patients — the seed PDAC patients and a Synthea background,
all re-identified with a suffix unique to the session, because the server is shared and never
assumed empty."""

from __future__ import annotations

import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
import requests

from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles, transaction_from_bundle
from tests.integration.conftest import fhir_base_url  # noqa: F401  (the session's HAPI server)

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.population import PLACEHOLDER, synthea_templates  # noqa: E402

BACKGROUND_PATIENTS = 12
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def post_transaction(base: str, transaction: dict) -> None:
    response = requests.post(base, data=orjson.dumps(transaction), headers=FHIR_JSON, timeout=120)
    assert response.status_code < 300, f"HTTP {response.status_code}: {response.text[:500]}"


def synthea_background(suffix: str, count: int) -> list[dict]:
    """Transactions of ``count`` Synthea patients (trimmed as the bench population is), re-identified."""
    from cds_service.screening.reads import TrialReads
    from cds_service.trials import get_trial

    templates, _ = synthea_templates(TrialReads.from_trial(get_trial("NCT05271110")))
    transactions = []
    for template in templates[:count]:
        entries = []
        for _rtype, line in template:
            resource = orjson.loads(line.replace(PLACEHOLDER, suffix.encode()))
            ref = f"{resource['resourceType']}/{resource['id']}"
            entries.append({"fullUrl": ref, "resource": _local_references_only(resource),
                            "request": {"method": "PUT", "url": ref}})
        transactions.append({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return transactions


# Synthea points at Encounters, Practitioners and Organizations the trial does not read (and the
# background does not carry); the server would refuse references to resources it does not hold.
_DROPPED = ("encounter", "context", "requester", "performer", "asserter", "recorder", "serviceProvider",
            "location", "reasonReference", "basedOn", "partOf", "managingOrganization", "generalPractitioner",
            "informationSource", "derivedFrom", "hasMember", "referrer", "interpreter", "endpoint", "result",
            "report", "focus", "insurance", "supportingInformation", "device", "specimen", "procedureCode")


def _local_references_only(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in _DROPPED}


@pytest.fixture(scope="session")
def screening_today():
    return datetime.now(timezone.utc).date()


def assert_bulk_export_enabled(base: str) -> None:
    """A HAPI started from a jar older than its Bulk export settings is still running on the port
    (fhir-up.sh reuses a running server): say so instead of failing on a 400 later."""
    metadata = requests.get(f"{base}/metadata", headers=FHIR_JSON, timeout=60).json()
    operations = {op.get("name") for rest in metadata.get("rest", []) for op in rest.get("operation", [])}
    operations |= {op.get("name") for rest in metadata.get("rest", []) for r in rest.get("resource", [])
                   for op in r.get("operation", [])}
    assert "export" in operations, (f"{base} has no $export: it runs an older build of hapi/; restart it "
                                    f"(make fhir-down && make fhir-up) to get Bulk Data export")


@pytest.fixture(scope="session")
def hapi_population(fhir_base_url, screening_today):  # noqa: F811
    """{"suffix", "seeds": [patient ids], "background": [patient ids]} loaded into the server."""
    assert_bulk_export_enabled(fhir_base_url)
    suffix = f"-h8{secrets.token_hex(3)}"
    from scripts.population import reidentify_bundle

    seeds = []
    for bundle in seed_bundles().values():
        moved = reidentify_bundle(rebase_bundle(bundle, anchor_date(), screening_today), suffix)
        transaction, _invalid = transaction_from_bundle(moved)
        post_transaction(fhir_base_url, transaction)
        seeds.append(next(e["resource"]["id"] for e in transaction["entry"]
                          if e["resource"]["resourceType"] == "Patient"))
    background = []
    for transaction in synthea_background(suffix, BACKGROUND_PATIENTS):
        post_transaction(fhir_base_url, transaction)
        background.append(next(e["resource"]["id"] for e in transaction["entry"]
                               if e["resource"]["resourceType"] == "Patient"))
    return {"suffix": suffix, "seeds": sorted(seeds), "background": sorted(background)}
