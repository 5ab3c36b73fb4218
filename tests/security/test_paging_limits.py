"""Bounded record gathering: pages and resources per query, and next links that stay home."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.errors import DataUnavailable
from cds_service.record import _page_url
from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles
from tests.security.conftest import SERVICE_PATH, auth_header, hook_body, is_operation_outcome
from tests.service.fhir_server import FhirTestServer

TOKEN = "paging-test-access-token"


@pytest.fixture(scope="module")
def all_bundles():
    today = datetime.now(timezone.utc).date()
    return {slug: rebase_bundle(b, anchor_date(), today) for slug, b in seed_bundles().items()}


def call(make_app, server, signer, bundle, trial, **config):
    client = make_app(TRIALCDS_FHIR_ALLOWLIST=server.base_url, **config).test_client()
    body = hook_body(bundle, trial, fhirServer=server.base_url, fhirAuthorization={"access_token": TOKEN})
    del body["prefetch"]
    return client.post(SERVICE_PATH, json=body, headers=auth_header(signer))


def test_within_the_bounds_the_record_is_fetched(make_app, signer, bundle, trial, all_bundles):
    with FhirTestServer(all_bundles, page_size=3, token=TOKEN) as server:
        response = call(make_app, server, signer, bundle, trial)
    assert response.status_code == 200, response.get_data(as_text=True)
    notes = response.get_json()["cards"][0]["extension"]["trialcds.eligibility"]["notes"]
    assert any("pages" in note for note in notes)


@pytest.mark.parametrize("setting, value, words", [
    ("TRIALCDS_FHIR_MAX_PAGES", "1", "more than 1 pages"),
    ("TRIALCDS_FHIR_MAX_RESOURCES", "2", "more than 2 resources"),
])
def test_past_a_bound_the_call_is_412_never_a_decision_on_part_of_the_chart(
        make_app, signer, bundle, trial, all_bundles, setting, value, words):
    with FhirTestServer(all_bundles, page_size=3, token=TOKEN) as server:
        response = call(make_app, server, signer, bundle, trial, **{setting: value})
    assert response.status_code == 412
    outcome = response.get_json()
    assert is_operation_outcome(outcome) and words in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("link", [
    "http://127.0.0.1:8090/fhir/../admin?page=2",
    "http://127.0.0.1:8090/fhir/%2e%2e/admin?page=2",
    "http://user@127.0.0.1:8090/fhir?page=2",
    "http://127.0.0.1:8090/fhir%2f..%2fadmin?page=2",
    "http://127.0.0.1:8091/fhir?page=2",
    "https://127.0.0.1:8090/fhir?page=2",
    "http://127.0.0.1.evil.com:8090/fhir?page=2",
])
def test_next_links_off_the_base_are_refused(link):
    with pytest.raises(DataUnavailable):
        _page_url(link, "http://127.0.0.1:8090/fhir", "conditions")


def test_next_links_on_the_base_are_followed():
    assert _page_url("http://127.0.0.1:8090/fhir?_getpages=abc&_offset=3", "http://127.0.0.1:8090/fhir",
                     "conditions") == "http://127.0.0.1:8090/fhir?_getpages=abc&_offset=3"
