"""``--write-group``: the worklist as a FHIR Group on the FHIR server, so the EHR side sees it too.

The Group is built with ``fhir.resources.R4B`` (validated before it leaves) and PUT under an id
derived from the trial's service id, so each run replaces the previous worklist instead of piling up
Groups. The token, when given, is sent as a bearer token and never logged.
"""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT_S = (5.0, 60.0)


class GroupWriteError(Exception):
    """The server refused the Group or could not be reached (exit code 3)."""


def group_id(service_id: str) -> str:
    return f"trialcds-candidates-{service_id}"[:64]


def build_group(trial: Any, as_of: str, patient_refs: list[str]) -> dict[str, Any]:
    """A Group (type person, actual) naming the trial, one member per candidate; validated as R4B."""
    from fhir.resources.R4B.group import Group  # heavy: only --write-group needs the models

    group = Group.model_validate({
        "resourceType": "Group",
        "id": group_id(trial.service.id),
        "type": "person",
        "actual": True,
        "name": f"Candidates for {trial.id} ({trial.acronym or trial.title}) as of {as_of}",
        "quantity": len(patient_refs),
        "characteristic": [{
            "code": {"text": "Screened as a candidate for a clinical trial (trialcds)"},
            "valueCodeableConcept": {
                "coding": [{"system": trial.studyIdentifier.system, "code": trial.studyIdentifier.value}],
                "text": trial.title},
            "exclude": False,
        }],
        "member": [{"entity": {"reference": ref}} for ref in patient_refs],
    })
    return group.model_dump(mode="json", exclude_none=True)


def put_group(base_url: str, group: dict[str, Any], token: str | None = None) -> str:
    """PUT [base]/Group/[id]; the Group's URL on success."""
    url = f"{base_url.rstrip('/')}/Group/{group['id']}"
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.put(url, json=group, headers=headers, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise GroupWriteError(f"could not reach {base_url} ({exc.__class__.__name__})") from None
    if response.status_code not in (200, 201):
        raise GroupWriteError(f"{url}: the server answered {response.status_code}")
    return url
