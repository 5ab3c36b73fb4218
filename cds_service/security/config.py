"""Security configuration, read once from the environment (or a Flask-style mapping in tests).

Every knob is an environment variable so operators configure the service the same way under
gunicorn, in a container and in tests. Parsing is strict: a malformed clients file must stop the
service at start-up, not quietly let nobody (or everybody) in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.security.urls import UrlRefused, is_loopback_host, parse_base_url

ENV_CLIENTS_FILE = "TRIALCDS_CLIENTS_FILE"
ENV_PUBLIC_URL = "TRIALCDS_PUBLIC_URL"
ENV_FHIR_ALLOWLIST = "TRIALCDS_FHIR_ALLOWLIST"
ENV_MAX_BODY_BYTES = "TRIALCDS_MAX_BODY_BYTES"
ENV_FHIR_MAX_PAGES = "TRIALCDS_FHIR_MAX_PAGES"
ENV_FHIR_MAX_RESOURCES = "TRIALCDS_FHIR_MAX_RESOURCES"
ENV_JWT_CLOCK_SKEW = "TRIALCDS_JWT_CLOCK_SKEW"
ENV_JWT_MAX_LIFETIME = "TRIALCDS_JWT_MAX_LIFETIME"
ENV_JWKS_REFETCH_INTERVAL = "TRIALCDS_JWKS_REFETCH_INTERVAL"

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
# The record gatherer's own defaults (record.MAX_PAGES / MAX_RESOURCES): no knob changes them silently.
DEFAULT_FHIR_MAX_PAGES = 50
DEFAULT_FHIR_MAX_RESOURCES = 5000
DEFAULT_CLOCK_SKEW = 60
# SMART Backend Services caps client assertions at five minutes; CDS Hooks clients mint one JWT
# per call, so anything longer is either a misconfigured client or a token meant to be replayed.
DEFAULT_MAX_LIFETIME = 300
DEFAULT_REFETCH_INTERVAL = 60.0


class ConfigError(ValueError):
    """The security configuration is unusable; the message is safe to print to an operator."""


@dataclass(frozen=True)
class ClientConfig:
    """One trusted CDS client (EHR): its issuer and where its public keys come from."""

    iss: str
    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class SecurityConfig:
    clients: tuple[ClientConfig, ...] = ()
    public_url: str | None = None
    fhir_allowlist: tuple[str, ...] = ()
    dev: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    fhir_max_pages: int = DEFAULT_FHIR_MAX_PAGES
    fhir_max_resources: int = DEFAULT_FHIR_MAX_RESOURCES
    clock_skew: int = DEFAULT_CLOCK_SKEW
    max_lifetime: int = DEFAULT_MAX_LIFETIME
    jwks_refetch_interval: float = DEFAULT_REFETCH_INTERVAL

    @property
    def auth_enabled(self) -> bool:
        # --dev turns authentication off (loudly, in serve); otherwise it is always on, and a
        # production start without clients is refused by check_production_config.
        return not self.dev

    def expected_audience(self, path: str) -> str:
        """The exact endpoint URL a client must put in ``aud``: public base URL + request path."""
        base = (self.public_url or "").rstrip("/")
        return base + path


def load_security_config(source: Mapping[str, Any] | None = None, *, dev: bool = False) -> SecurityConfig:
    """Read the TRIALCDS_* security settings from ``source`` (default: ``os.environ``)."""
    env: Mapping[str, Any] = os.environ if source is None else source
    clients_file = _text(env.get(ENV_CLIENTS_FILE))
    clients = load_clients_file(Path(clients_file)) if clients_file else ()
    public_url = _text(env.get(ENV_PUBLIC_URL))
    if public_url:
        _check_public_url(public_url)
    allowlist = parse_allowlist(_text(env.get(ENV_FHIR_ALLOWLIST)) or "")
    return SecurityConfig(
        clients=clients,
        public_url=public_url.rstrip("/") if public_url else None,
        fhir_allowlist=allowlist,
        dev=dev,
        max_body_bytes=_int(env, ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, minimum=1024),
        fhir_max_pages=_int(env, ENV_FHIR_MAX_PAGES, DEFAULT_FHIR_MAX_PAGES, minimum=1),
        fhir_max_resources=_int(env, ENV_FHIR_MAX_RESOURCES, DEFAULT_FHIR_MAX_RESOURCES, minimum=1),
        clock_skew=_int(env, ENV_JWT_CLOCK_SKEW, DEFAULT_CLOCK_SKEW, minimum=0),
        max_lifetime=_int(env, ENV_JWT_MAX_LIFETIME, DEFAULT_MAX_LIFETIME, minimum=1),
        jwks_refetch_interval=_float(env, ENV_JWKS_REFETCH_INTERVAL, DEFAULT_REFETCH_INTERVAL, minimum=0.0),
    )


def load_clients_file(path: Path) -> tuple[ClientConfig, ...]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{ENV_CLIENTS_FILE}: {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{ENV_CLIENTS_FILE}: {path}: not readable JSON ({exc.__class__.__name__})") from None
    return parse_clients(data, origin=str(path))


def parse_clients(data: Any, origin: str = "clients") -> tuple[ClientConfig, ...]:
    if not isinstance(data, dict) or not isinstance(data.get("clients"), list):
        raise ConfigError(f'{origin}: expected {{"clients": [...]}}')
    clients: list[ClientConfig] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["clients"]):
        where = f"{origin}: clients[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: not an object")
        iss = raw.get("iss")
        if not isinstance(iss, str) or not iss:
            raise ConfigError(f"{where}: 'iss' must be a non-empty string")
        if iss in seen:
            # Two entries for one issuer would make key selection ambiguous.
            raise ConfigError(f"{where}: duplicate iss {iss!r}")
        seen.add(iss)
        jwks, jwks_url = raw.get("jwks"), raw.get("jwks_url")
        if (jwks is None) == (jwks_url is None):
            raise ConfigError(f"{where}: exactly one of 'jwks' or 'jwks_url' is required")
        if jwks is not None and not (isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)):
            raise ConfigError(f"{where}: 'jwks' must be a JWK Set {{\"keys\": [...]}}")
        if jwks_url is not None:
            if not isinstance(jwks_url, str):
                raise ConfigError(f"{where}: 'jwks_url' must be a string")
            _check_jwks_url(jwks_url, where)
        tenant = raw.get("tenant")
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ConfigError(f"{where}: 'tenant' must be a non-empty string")
        clients.append(ClientConfig(iss=iss, jwks=jwks, jwks_url=jwks_url, tenant=tenant))
    return tuple(clients)


def parse_allowlist(text: str) -> tuple[str, ...]:
    entries = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            parse_base_url(item)
        except UrlRefused as exc:
            raise ConfigError(f"{ENV_FHIR_ALLOWLIST}: {item!r}: {exc}") from None
        entries.append(item)
    return tuple(entries)


def production_problems(config: SecurityConfig) -> list[str]:
    """Reasons a non-dev service must not start; empty when it may.

    An empty FHIR allowlist is allowed: the service then works on prefetch alone.
    """
    problems = []
    if not config.clients:
        problems.append(f"no trusted clients: set {ENV_CLIENTS_FILE} to a JSON file of client issuers and keys")
    if not config.public_url:
        problems.append(f"no public URL: set {ENV_PUBLIC_URL} to the externally visible base URL "
                        "(each JWT's 'aud' must be an endpoint under it)")
    return problems


def _check_public_url(url: str) -> None:
    try:
        parsed = parse_base_url(url)
    except UrlRefused as exc:
        raise ConfigError(f"{ENV_PUBLIC_URL}: {url!r}: {exc}") from None
    if parsed.query_or_fragment:
        raise ConfigError(f"{ENV_PUBLIC_URL}: {url!r}: no query or fragment allowed")


def _check_jwks_url(url: str, where: str) -> None:
    try:
        parsed = parse_base_url(url)
    except UrlRefused as exc:
        raise ConfigError(f"{where}: jwks_url {url!r}: {exc}") from None
    # Keys fetched over plain http could be swapped by anyone on the path; loopback is the one
    # exception (a local key server, and the tests).
    if parsed.scheme != "https" and not is_loopback_host(parsed.host):
        raise ConfigError(f"{where}: jwks_url must be https (http only on loopback)")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(env: Mapping[str, Any], name: str, default: int, *, minimum: int) -> int:
    raw = _text(env.get(name))
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: not an integer: {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}")
    return value


def _float(env: Mapping[str, Any], name: str, default: float, *, minimum: float) -> float:
    raw = _text(env.get(name))
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: not a number: {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{name}: must be a finite number, at least {minimum}")
    return value
