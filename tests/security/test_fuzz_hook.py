"""Property-based fuzzing of the hook endpoint: whatever arrives, no 5xx, and the service keeps serving.

Four families of input, a few hundred cases each, all with a valid client JWT (so the fuzz reaches
the parser, the record and the rules, not just the 401 gate): random JSON, random bytes, valid
requests with random structural mutations, and valid requests whose prefetched FHIR resources
carry wrong types, huge numbers, odd unicode and nested junk. The counts land in the terminal
summary ("fuzz cases run").
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import SERVICE_PATH, auth_header, hook_body, is_operation_outcome

MAX_EXAMPLES = 300
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.filter_too_much])

leaf = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "null", "Patient/", "../../etc/passwd", "https://evil.example.net/fhir", "\u0000",
                     "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u202eevil", "9" * 400, "1e309", "-0", "2026-02-30", "2026-13-01T25:61:00Z",
                     "http://loinc.org|89247-1", "{{context.patientId}}"]),
)
json_value = st.recursive(
    leaf,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=12), children, max_size=5)),
    max_leaves=25,
)
FHIR_FIELDS = ["code", "valueQuantity", "valueCodeableConcept", "valueInteger", "valueString", "effectiveDateTime",
               "effectivePeriod", "issued", "onsetDateTime", "recordedDate", "abatementDateTime", "status",
               "clinicalStatus", "verificationStatus", "category", "subject", "patient", "component", "bodySite",
               "medicationCodeableConcept", "medicationReference", "performedDateTime", "performedPeriod",
               "birthDate", "id", "resourceType", "extension", "interpretation", "focus", "stage", "evidence",
               "series", "started", "dosage", "effectiveTimeDateTime", "authoredOn", "intent", "meta", "contained"]
fhir_junk = st.one_of(
    json_value,
    st.builds(lambda v: {"value": v, "unit": "U/mL", "system": "http://unitsofmeasure.org", "code": "U/mL"},
              st.one_of(st.text(max_size=10), st.integers(min_value=-(10**40), max_value=10**40),
                        st.floats(), st.none(), st.lists(st.integers(), max_size=3))),
    st.builds(lambda s, c: {"coding": [{"system": s, "code": c}]}, leaf, leaf),
    st.builds(lambda c: {"coding": c}, json_value),
    st.builds(lambda r: {"reference": r}, leaf),
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, prefix + (i,))
    return found


def _set(root: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return root


def _resources(body: dict) -> list[dict]:
    found = []
    for value in (body.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            found += [e["resource"] for e in value.get("entry", []) if isinstance(e, dict) and "resource" in e]
        elif isinstance(value, dict):
            found.append(value)
    return found


@pytest.fixture
def client(make_app):
    # In-memory SQLite: a thousand calls with a file database spend their time in fsync.
    return make_app(TRIALCDS_DATABASE_URL="sqlite://").test_client()


def _post(client, signer, data: bytes) -> Any:
    return client.post(SERVICE_PATH, data=data, content_type="application/json", headers=auth_header(signer))


def _check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code != 200:
        assert is_operation_outcome(response.get_json(silent=True)), response.get_data(as_text=True)[:300]
    else:
        assert isinstance(response.get_json()["cards"], list)


def _still_serves(client, signer, bundle, trial) -> None:
    response = client.post(SERVICE_PATH, json=hook_body(bundle, trial), headers=auth_header(signer))
    assert response.status_code == 200
    assert response.get_json()["cards"]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def test_fuzz_random_json_and_bytes(client, signer, bundle, trial, fuzz_counts):
    count = 0

    @FUZZ_SETTINGS
    @given(st.one_of(json_value.map(_dumps), st.binary(max_size=300)))
    def run(data: bytes) -> None:
        nonlocal count
        count += 1
        _check(_post(client, signer, data))

    run()
    fuzz_counts["random JSON / bytes"] = count
    _still_serves(client, signer, bundle, trial)


def test_fuzz_mutated_valid_requests(client, signer, bundle, trial, fuzz_counts):
    valid = hook_body(bundle, trial)
    count = 0

    @FUZZ_SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        nonlocal count
        count += 1
        body: Any = copy.deepcopy(valid)
        body["hookInstance"] = data.draw(st.uuids()).__str__()
        for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
            path = data.draw(st.sampled_from(_paths(body)))
            op = data.draw(st.sampled_from(["replace", "delete", "wrap", "stringify"]))
            parent_is_container = bool(path)
            if op == "delete" and parent_is_container:
                body = _set(body, path, None, delete=True)
            elif op == "wrap":
                body = _set(body, path, [_get(body, path)])
            elif op == "stringify":
                body = _set(body, path, json.dumps(_get(body, path))[:200])
            else:
                body = _set(body, path, data.draw(json_value))
        _check(_post(client, signer, _dumps(body)))

    run()
    fuzz_counts["mutated valid requests"] = count
    _still_serves(client, signer, bundle, trial)


def test_fuzz_prefetched_resources(client, signer, bundle, trial, fuzz_counts):
    valid = hook_body(bundle, trial)
    count = 0

    @FUZZ_SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        nonlocal count
        count += 1
        body = copy.deepcopy(valid)
        body["hookInstance"] = str(data.draw(st.uuids()))
        resources = _resources(body)
        for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
            resource = data.draw(st.sampled_from(resources))
            field = data.draw(st.sampled_from(FHIR_FIELDS))
            resource[field] = data.draw(fhir_junk)
        _check(_post(client, signer, _dumps(body)))

    run()
    fuzz_counts["junk in prefetched resources"] = count
    _still_serves(client, signer, bundle, trial)


def test_fuzz_authorization_header(client, bundle, trial, signer, fuzz_counts):
    count = 0
    body = _dumps(hook_body(bundle, trial))

    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)  # sendable bytes
    b64ish = st.text("abcXYZ-_eyJ0123=+/", max_size=80)

    @FUZZ_SETTINGS
    @given(st.one_of(header_text, header_text.map(lambda t: "Bearer " + t),
                     st.builds(lambda a, b, c: f"Bearer {a}.{b}.{c}", b64ish, b64ish, b64ish)))
    def run(header: str) -> None:
        nonlocal count
        count += 1
        response = client.post(SERVICE_PATH, data=body, content_type="application/json",
                               headers={"Authorization": header})
        assert response.status_code == 401
        assert response.get_data() == b""

    run()
    fuzz_counts["Authorization header"] = count
    _still_serves(client, signer, bundle, trial)


def _get(root: Any, path: tuple) -> Any:
    for step in path:
        root = root[step]
    return root
