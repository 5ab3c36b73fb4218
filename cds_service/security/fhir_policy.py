"""Which FHIR servers the service may call (SSRF guard), and which paging links it may follow.

The request's ``fhirServer`` comes from the caller, and the service would send the EHR's access
token to it, so an unchecked value turns the service into a proxy into the hospital network and
a token exfiltration channel. The check runs before any connection is attempted.
"""

from __future__ import annotations

from collections.abc import Iterable

from cds_service.errors import ForbiddenFhirServer
from cds_service.security.urls import ParsedUrl, UrlRefused, is_loopback_host, parse_base_url


class FhirServerForbidden(ForbiddenFhirServer):
    """``fhirServer`` is not one the service may call; the app answers 403 + OperationOutcome."""

    def __init__(self) -> None:
        # Deliberately does not echo the URL back: it is caller-controlled text.
        super().__init__("fhirServer is not on this service's allowlist of FHIR servers")


class FhirServerPolicy:
    """``policy(url)`` returns None for an allowed FHIR base URL and raises FhirServerForbidden."""

    def __init__(self, allowlist: Iterable[str], *, allow_loopback: bool = False) -> None:
        self._prefixes: tuple[ParsedUrl, ...] = tuple(parse_base_url(entry) for entry in allowlist)
        self._allow_loopback = allow_loopback

    def allows(self, url: object) -> bool:
        try:
            parsed = parse_base_url(url)
        except UrlRefused:
            return False
        if parsed.query_or_fragment:
            return False  # a base URL has neither; a query here could smuggle search parameters
        if self._allow_loopback and is_loopback_host(parsed.host):
            return True
        # The scheme is part of the prefix: http is allowed only where the operator wrote http.
        return any(parsed.has_prefix(prefix) for prefix in self._prefixes)

    def __call__(self, fhir_server_url: str) -> None:
        if not self.allows(fhir_server_url):
            raise FhirServerForbidden()


def is_within_base(base_url: str, url: object) -> bool:
    """True when ``url`` (e.g. a Bundle ``next`` link) stays under ``base_url``.

    A hostile or compromised server could otherwise send the service — carrying the EHR's
    access token — anywhere with a crafted ``next`` link. Queries are expected (paging
    cursors); fragments are not.
    """
    try:
        base = parse_base_url(base_url)
        target = parse_base_url(url)
    except UrlRefused:
        return False
    if isinstance(url, str) and "#" in url:
        return False
    return target.has_prefix(base)
