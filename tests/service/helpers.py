"""Request builders and response checks shared by the service tests."""

from __future__ import annotations

import uuid
from typing import Any

from cds_service.seeding import patient_id, prefetch_from_bundle

SERVICE_URL = "/cds-services/nct05271110"
FEEDBACK_URL = SERVICE_URL + "/feedback"
CARD_VERDICTS = {"likely-eligible", "needs-review"}


def hook_request(bundle: dict, trial, *, keys: set[str] | None = None, prefetch: dict | None = None,
                 **fields: Any) -> dict[str, Any]:
    """A patient-view call for the bundle's patient; by default with the full prefetch."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-test", "patientId": patient_id(bundle)},
        "prefetch": prefetch if prefetch is not None else prefetch_from_bundle(bundle, trial, keys),
    }
    body.update(fields)
    return body


def the_card(response) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    assert len(cards) == 1, cards
    return cards[0]


def is_operation_outcome(body: Any) -> bool:
    return (isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
            and bool(body.get("issue")) and all(i.get("diagnostics") for i in body["issue"]))


def empty_values(value: Any, where: str = "") -> list[str]:
    """Paths of every null, empty string, empty list or empty object inside a JSON value."""
    if value is None or value == "" or value == [] or value == {}:
        return [where or "(root)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_values(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_values(v, f"{where}[{i}]")]
    return []
