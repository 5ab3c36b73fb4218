"""The Flask application factory (flaskr style): configuration, database, security seams, blueprints.

Configuration comes from environment variables; ``create_app(config)`` overrides any of them (tests):

=============================  ==========================================================  ==========
``TRIALCDS_DATABASE_URL``      SQLAlchemy URL of the feedback store                         ``sqlite:///<repo>/var/trialcds.sqlite``
``TRIALCDS_FETCH_DEADLINE``    seconds allowed for fetching missing data per hook call      ``4``
``TRIALCDS_SUPPRESS_DAYS``     days without a card after a clinician overrode one           ``30``
``TRIALCDS_SALT``              salt of the patient-id hash; unset → generated once and
                               kept in the database so it survives restarts
``TRIALCDS_DEV``               ``1``/``true``: local development (see the seams below)      false
``TRIALCDS_PUBLIC_URL``        the service's public base URL, for the JWT audience          the request's own URL
``TRIALCDS_STUDY_TEAM_REFERENCE`` who receives the card's referral (``ServiceRequest.performer``) — none
                               ``PractitionerRole/…``, ``HealthcareService/…``; an active
                               referral to it means "already in the pipeline" (no card)
``TRIALCDS_STUDY_TEAM_DISPLAY``   its display in the referral and card                         "<acronym> study team, <site>"
``TRIALCDS_TIMEZONE``          IANA zone of the site: a hook call's as-of date is today there ``UTC``
=============================  ==========================================================  ==========

Security seams — two callables in ``app.extensions`` that the security module replaces; every hook
call and every feedback call goes through them before anything else happens. Their names, contracts
and fail-closed defaults live in ``cds_service/seams.py``, which this module, ``hooks`` and
``security.install`` all import (none of them imports another for the seams).

``install_security`` (``cds_service/security``) replaces both: JWT client authentication (off in
dev) and the ``TRIALCDS_FHIR_ALLOWLIST`` (plus loopback in dev). Its settings — clients file,
allowlist, body cap, paging bounds — are listed in docs/security.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from cds_service import store
from cds_service.asof import site_zone
from cds_service.seams import install_default_seams
from cds_service.security.install import install_security
from cds_service.trials import REPO_ROOT, all_trials

DEFAULT_DATABASE_URL = f"sqlite:///{REPO_ROOT / 'var' / 'trialcds.sqlite'}"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(load_config(config))
    app.json.sort_keys = False  # cards read in the order they are built
    app.json.ensure_ascii = False
    all_trials()  # a broken trial definition stops the start, not the first hook call
    _init_store(app)
    # The security policy (docs/security.md): fills both seams, caps the request body
    # (TRIALCDS_MAX_BODY_BYTES), logs one JSON line per hook call. The defaults below stay as a
    # fail-closed backstop for anything it leaves unset (authentication in --dev).
    install_security(app)
    install_default_seams(app)
    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from cds_service import hooks  # here, so hooks can import this module's helpers

    app.register_blueprint(hooks.bp)


# --- configuration -------------------------------------------------------------------------------------

def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The effective configuration: environment variables, then ``overrides``. Raises ValueError."""
    config: dict[str, Any] = {
        "TRIALCDS_DATABASE_URL": environ.get("TRIALCDS_DATABASE_URL") or DEFAULT_DATABASE_URL,
        "TRIALCDS_FETCH_DEADLINE": _number(environ, "TRIALCDS_FETCH_DEADLINE", 4.0, float),
        "TRIALCDS_SUPPRESS_DAYS": _number(environ, "TRIALCDS_SUPPRESS_DAYS", 30, int),
        "TRIALCDS_SALT": environ.get("TRIALCDS_SALT") or None,
        "TRIALCDS_DEV": parse_bool(environ.get("TRIALCDS_DEV", "")),
        "TRIALCDS_PUBLIC_URL": environ.get("TRIALCDS_PUBLIC_URL") or None,
        "TRIALCDS_STUDY_TEAM_REFERENCE": environ.get("TRIALCDS_STUDY_TEAM_REFERENCE") or None,
        "TRIALCDS_STUDY_TEAM_DISPLAY": environ.get("TRIALCDS_STUDY_TEAM_DISPLAY") or None,
        # The as-of date of a hook call is today in this IANA zone; an unknown name stops the start.
        "TRIALCDS_TIMEZONE": environ.get("TRIALCDS_TIMEZONE", "").strip() or "UTC",
    }
    config.update(overrides or {})
    site_zone(config["TRIALCDS_TIMEZONE"])  # ValueError naming the setting for an unknown zone
    return config


def _number(environ: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def parse_bool(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


# --- database --------------------------------------------------------------------------------------------

def _init_store(app: Flask) -> None:
    # Production: the database must exist at the current schema (`trialcds db upgrade`) — never a new
    # empty one, whose new salt would forget every override. --dev creates or upgrades it.
    store.init_app(app)
