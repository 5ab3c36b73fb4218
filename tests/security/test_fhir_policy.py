"""The FHIR server allowlist: parsed, normalised prefixes; anything ambiguous is refused."""

from __future__ import annotations

import pytest

from cds_service.errors import ForbiddenFhirServer
from cds_service.security.config import ConfigError, parse_allowlist
from cds_service.security.fhir_policy import FhirServerPolicy, is_within_base

ALLOW = ["https://allowed.example.org/fhir", "http://legacy.example.org:8080/r4/", "https://whole.example.org"]


@pytest.fixture()
def policy():
    return FhirServerPolicy(ALLOW)


@pytest.mark.parametrize("url", [
    "https://allowed.example.org/fhir",
    "https://allowed.example.org/fhir/",
    "https://ALLOWED.example.org/fhir",
    "HTTPS://allowed.example.org./fhir",
    "https://allowed.example.org:443/fhir",
    "https://allowed.example.org/fhir/tenant-1/r4",
    "http://legacy.example.org:8080/r4",  # http because the operator wrote http
    "https://whole.example.org/anything",
])
def test_allowed(policy, url):
    assert policy.allows(url)
    policy(url)  # no exception


@pytest.mark.parametrize("url", [
    "https://allowed.example.org.evil.com/fhir",
    "https://evil.com/allowed.example.org/fhir",
    "https://allowed.example.org/fhir-evil",
    "https://allowed.example.org/fhirx/Patient",
    "https://allowed.example.org/",
    "https://allowed.example.org/other",
    "http://allowed.example.org/fhir",  # scheme downgrade
    "https://allowed.example.org:8443/fhir",
    "http://legacy.example.org/r4",  # port 80 ≠ 8080
    "https://user:pw@allowed.example.org/fhir",
    "https://allowed.example.org@evil.com/fhir",
    "https://evil.com#@allowed.example.org/fhir",
    "https://evil.com\\@allowed.example.org/fhir",
    "https://allowed.example.org\\@evil.com/fhir",
    "https://allowed.example.org/fhir/../admin",
    "https://allowed.example.org/fhir/%2e%2e/admin",
    "https://allowed.example.org/fhir%2f..%2fadmin",
    "https://allowed.example.org/fhir?x=1",
    "https://allowed.example.org/fhir#frag",
    "https://allowed.example.org /fhir",
    "https://allowed.example.org/fhir\n",
    "https://allowed.exаmple.org/fhir",  # Cyrillic 'а'
    "ftp://allowed.example.org/fhir",
    "file:///etc/passwd",
    "gopher://allowed.example.org/fhir",
    "//allowed.example.org/fhir",
    "allowed.example.org/fhir",
    "https://[::1]/fhir",
    "http://127.0.0.1:8080/fhir",
    "http://localhost/fhir",
    "http://169.254.169.254/latest/meta-data",
    "https://allowed.example.org:99999/fhir",
    "",
    None,
    42,
    "https://" + "a" * 3000 + ".org/fhir",
])
def test_refused(policy, url):
    assert not policy.allows(url)
    with pytest.raises(ForbiddenFhirServer) as caught:
        policy(url)
    assert caught.value.status == 403
    assert "evil" not in caught.value.diagnostics  # the caller's URL is not echoed


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/fhir", "http://127.9.9.9/fhir", "http://[::1]:8090/fhir",
                                 "http://localhost:8090/fhir", "https://localhost/fhir"])
def test_dev_allows_loopback(url):
    assert FhirServerPolicy([], allow_loopback=True).allows(url)
    assert not FhirServerPolicy([]).allows(url)


@pytest.mark.parametrize("url", ["http://2130706433/fhir", "http://0x7f.1/fhir", "http://localhost.evil.com/fhir",
                                 "http://10.0.0.1/fhir", "http://[::ffff:10.0.0.1]/fhir", "http://0.0.0.0/fhir"])
def test_dev_does_not_allow_other_addresses(url):
    assert not FhirServerPolicy([], allow_loopback=True).allows(url)


def test_empty_allowlist_refuses_everything():
    assert not FhirServerPolicy([]).allows("https://allowed.example.org/fhir")


@pytest.mark.parametrize("bad", ["https://u:p@ehr.example.org", "ftp://x.org", "https://ehr example.org",
                                 "https://ehr.example.org/a/../b"])
def test_bad_allowlist_entries_stop_the_service(bad):
    with pytest.raises(ConfigError):
        parse_allowlist(f"https://ok.example.org, {bad}")


def test_allowlist_parsing():
    assert parse_allowlist(" https://a.example.org/fhir ,, http://b.example.org ") == (
        "https://a.example.org/fhir", "http://b.example.org")


@pytest.mark.parametrize("url, ok", [
    ("https://ehr.example.org/fhir?_getpages=abc&_page=2", True),
    ("https://ehr.example.org/fhir/Condition?patient=1&page=2", True),
    ("https://EHR.example.org:443/fhir/Condition?page=2", True),
    ("https://ehr.example.org.evil.com/fhir?page=2", False),
    ("https://evil.example.net/fhir?page=2", False),
    ("http://ehr.example.org/fhir?page=2", False),
    ("https://ehr.example.org/other?page=2", False),
    ("https://ehr.example.org/fhir/../admin", False),
    ("https://user@ehr.example.org/fhir?page=2", False),
    ("https://ehr.example.org/fhir?page=2#x", False),
    (None, False),
])
def test_next_links_stay_under_the_base(url, ok):
    assert is_within_base("https://ehr.example.org/fhir", url) is ok
