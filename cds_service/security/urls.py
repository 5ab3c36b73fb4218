"""Strict URL parsing for allow-listing.

Allow-list checks are only as good as the parser: string prefixes let
``https://ehr.example.org.evil.com`` pass for ``https://ehr.example.org``, and lenient parsers
disagree with HTTP clients about userinfo, backslashes and dot segments. So a URL is reduced to
(scheme, host, port, path segments) and anything ambiguous is refused rather than normalised.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class UrlRefused(ValueError):
    """The URL cannot be safely compared; the message names the reason, never secrets."""


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str  # lower case, no trailing dot, IPv6 without brackets
    port: int  # explicit, default filled in
    segments: tuple[str, ...]  # raw (still percent-encoded) path segments, outer empties dropped
    query_or_fragment: bool

    def has_prefix(self, prefix: ParsedUrl) -> bool:
        """Same origin, and ``prefix``'s path is a whole-segment prefix of ours (/fhir ≠ /fhir-x)."""
        return (
            self.scheme == prefix.scheme
            and self.host == prefix.host
            and self.port == prefix.port
            and self.segments[: len(prefix.segments)] == prefix.segments
        )


def parse_base_url(url: object) -> ParsedUrl:
    if not isinstance(url, str) or not url:
        raise UrlRefused("not a URL")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused("too long")
    # Non-ASCII (IDN must arrive as punycode), whitespace, controls and backslashes are where
    # parsers disagree with each other, so none of them is accepted.
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise UrlRefused("non-ASCII, whitespace, control character or backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("unparseable host or port") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused("scheme must be http or https")
    if "@" in parts.netloc:
        raise UrlRefused("userinfo (user:password@) is not allowed")
    host = _normalise_host(parts.netloc, parts.hostname)
    path = parts.path
    lowered = path.lower()
    if "%2f" in lowered or "%5c" in lowered or "%00" in lowered:
        raise UrlRefused("encoded slash, backslash or NUL in path")
    raw_segments = path.split("/")
    if any(unquote(s) in (".", "..") for s in raw_segments):
        raise UrlRefused("dot segments in path")
    segments = tuple(raw_segments)
    while segments and segments[0] == "":
        segments = segments[1:]
    while segments and segments[-1] == "":
        segments = segments[:-1]
    return ParsedUrl(
        scheme=scheme,
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        segments=segments,
        query_or_fragment=bool(parts.query or parts.fragment or url.endswith(("?", "#"))),
    )


def _normalise_host(netloc: str, hostname: str | None) -> str:
    if not hostname:
        raise UrlRefused("no host")
    if netloc.startswith("["):
        try:
            return str(ipaddress.IPv6Address(hostname))
        except ValueError:
            raise UrlRefused("bad IPv6 literal") from None
    host = hostname.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if not host or not all(_HOST_LABEL.match(label) for label in labels):
        raise UrlRefused("bad host name")
    return host


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 — written literally (no DNS, no decimal/octal IP forms)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
