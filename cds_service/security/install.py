"""Wiring: put the security policy into a Flask app built by ``cds_service.app.create_app``.

Kept apart from app.py so the application factory stays readable and the whole policy can be
reviewed here: body cap, FHIR-server allowlist, client authentication, the per-call log line.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request

from cds_service import record
from cds_service.seams import AUTHENTICATE, FHIR_POLICY
from cds_service.security import request_log
from cds_service.security.auth import Authenticator
from cds_service.security.config import ConfigError, SecurityConfig, load_security_config
from cds_service.security.fhir_policy import FhirServerPolicy
from cds_service.security.limits import CappedRequest
from cds_service.security.replay import ReplayCache
from cds_service.store import get_engine

SECURITY_CONFIG = "trialcds.security"
FETCH_MAX_BYTES = "trialcds.fetch_max_bytes"
ENV_FETCH_MAX_BYTES = "TRIALCDS_FETCH_MAX_BYTES"
HOOK_ENDPOINT = "hooks.hook_call"


def install_security(app: Flask) -> SecurityConfig:
    dev = bool(app.config.get("TRIALCDS_DEV"))
    # create_app's overrides (tests) win over the environment.
    config = load_security_config(ChainMap(dict(app.config), dict(os.environ)), dev=dev)
    app.extensions[SECURITY_CONFIG] = config
    app.extensions[FETCH_MAX_BYTES] = fetch_max_bytes(ChainMap(dict(app.config), dict(os.environ)))
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.request_class = CappedRequest  # the cap also for chunked bodies (limits.py)
    app.extensions[FHIR_POLICY] = FhirServerPolicy(config.fhir_allowlist, allow_loopback=dev)
    if config.auth_enabled:
        app.extensions[AUTHENTICATE] = _Authenticate(config, Authenticator(config, ReplayCache(get_engine(app))))
    # --dev: the service engineer's accept-everyone default stays (serve prints the warning).
    app.before_request(_start_hook_log)
    app.after_request(_emit_hook_log)
    return config


def get_security_config(app: Flask) -> SecurityConfig:
    return app.extensions[SECURITY_CONFIG]


def fetch_limits(app: Flask) -> dict[str, int]:
    """Paging and size bounds for ``record.gather_record``: a hostile or broken FHIR server cannot
    make one hook call page forever, pile up an unbounded chart in memory, or send one huge answer."""
    config = get_security_config(app)
    return {"max_pages": config.fhir_max_pages, "max_resources": config.fhir_max_resources,
            "max_bytes": app.extensions.get(FETCH_MAX_BYTES, record.MAX_BYTES)}


def fetch_max_bytes(settings: Mapping[str, Any]) -> int:
    """``TRIALCDS_FETCH_MAX_BYTES``: the cap on one FHIR response, decompressed (default 5 MiB)."""
    raw = str(settings.get(ENV_FETCH_MAX_BYTES) or "").strip()
    if not raw:
        return record.MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_FETCH_MAX_BYTES}: not an integer: {raw!r}") from None
    if value < 1024:
        raise ConfigError(f"{ENV_FETCH_MAX_BYTES}: must be at least 1024")
    return value


class _Authenticate:
    """The ``trialcds.authenticate`` seam.

    The seam's audience is the service endpoint (``…/cds-services/<id>``), also for feedback; a
    client may equally name the exact URL it called (``…/<id>/feedback``), which is just as much
    this service, so both are accepted — both built from the configured public URL, never from
    the request's Host header.
    """

    def __init__(self, config: SecurityConfig, authenticator: Authenticator) -> None:
        self._config = config
        self._authenticator = authenticator

    def __call__(self, req: Any, expected_audience_url: str) -> None:
        audiences = [expected_audience_url]
        if self._config.public_url:
            audiences.append(self._config.expected_audience(req.path))
        self._authenticator(req, audiences)


def _start_hook_log() -> None:
    if request.endpoint == HOOK_ENDPOINT and request.method == "POST":
        g.trialcds_hook_log = request_log.HookCallLog(service=(request.view_args or {}).get("service_id"))


def _emit_hook_log(response: Response) -> Response:
    entry = g.pop("trialcds_hook_log", None)
    if entry is not None:
        request_log.emit(entry, response.status_code)
    return response
