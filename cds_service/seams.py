"""The two security seams of the app: where they live in ``app.extensions``, and their defaults.

A home of their own, imported by the app factory (``app``), the HTTP layer (``hooks``) and the
security installer (``security.install``), none of which then needs another: before, the three
imported each other in a circle through these names.

``app.extensions[AUTHENTICATE]``
    ``(request: flask.Request, expected_audience_url: str) -> None``. Raises
    ``cds_service.errors.AuthenticationFailed`` to refuse the caller → a bare 401 (no body, no
    detail). The audience is the CDS service's endpoint, ``<public URL>/cds-services/<id>``, also
    for its ``/feedback``. Default: with ``TRIALCDS_DEV`` accept everyone; otherwise refuse
    everyone (fail closed until client authentication is configured).

``app.extensions[FHIR_POLICY]``
    ``(fhir_server_url: str) -> None``. Called with the request's ``fhirServer`` before any
    connection is made; raises ``cds_service.errors.ForbiddenFhirServer`` → 403 with an
    OperationOutcome. Default: ``https`` only; with ``TRIALCDS_DEV`` also ``http`` on loopback.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flask import Flask, Request

from cds_service.errors import AuthenticationFailed, ForbiddenFhirServer

AUTHENTICATE = "trialcds.authenticate"
FHIR_POLICY = "trialcds.fhir_policy"


def install_default_seams(app: Flask) -> None:
    """Fill whichever seam is still empty with its fail-closed default."""
    dev = bool(app.config["TRIALCDS_DEV"])
    app.extensions.setdefault(AUTHENTICATE, accept_everyone if dev else refuse_everyone)
    app.extensions.setdefault(FHIR_POLICY, dev_fhir_policy if dev else https_fhir_policy)


def accept_everyone(request: Request, expected_audience_url: str) -> None:
    """--dev only: no client authentication."""


def refuse_everyone(request: Request, expected_audience_url: str) -> None:
    raise AuthenticationFailed("no client authentication is configured (run with --dev for local use)")


def https_fhir_policy(fhir_server_url: str) -> None:
    if urlsplit(fhir_server_url).scheme != "https":
        raise ForbiddenFhirServer("fhirServer must use https")


def dev_fhir_policy(fhir_server_url: str) -> None:
    parts = urlsplit(fhir_server_url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return
    raise ForbiddenFhirServer("fhirServer must use https (http only on loopback in --dev)")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
