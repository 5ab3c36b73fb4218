"""The failures a CDS Hooks call can end in, and the HTTP answer each one gets.

Raised anywhere below the HTTP layer (record gathering, the security seams); ``hooks.py`` turns them
into responses. Only ``diagnostics`` reaches the client, so messages must never hold tokens,
patient data or stack traces.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error answered with an OperationOutcome body."""

    status = 500
    issue_code = "exception"

    def __init__(self, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics


class InvalidRequest(ServiceError):
    """400: malformed JSON, a missing required field, the wrong hook."""

    status = 400
    issue_code = "invalid"


class UnknownService(ServiceError):
    """404: no CDS service with that id."""

    status = 404
    issue_code = "not-found"


class DataUnavailable(ServiceError):
    """412: required data was neither prefetched nor obtainable from ``fhirServer``."""

    status = 412
    issue_code = "processing"


class ForbiddenFhirServer(ServiceError):
    """403: the security policy does not allow contacting this ``fhirServer``.

    Raised by ``app.extensions["trialcds.fhir_policy"]`` before any connection is made.
    """

    status = 403
    issue_code = "forbidden"


class AuthenticationFailed(Exception):
    """401 with an empty body: raised by ``app.extensions["trialcds.authenticate"]``.

    The message is for the server log only; the client learns nothing about why.
    """


def operation_outcome(diagnostics: str, code: str = "invalid", severity: str = "error") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}
