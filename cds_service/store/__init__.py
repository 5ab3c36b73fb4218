"""Durable state (SQLAlchemy 2 Core): cards issued, clinicians' feedback, card suppression, the salt.

``TRIALCDS_DATABASE_URL`` picks the database: SQLite (the default, one file) or PostgreSQL
(``postgresql://…``, psycopg 3: ``pip install 'trialcds[postgres]'``). The schema is managed by
migrations (``trialcds db upgrade``); see docs/operator.md for running it and for every limit.

- ``engine``: connections with time limits, the deleted-file guard;
- ``migrate``: Alembic migrations, the start-up schema check, the salt;
- ``feedback_store``: issued cards, feedback, suppression rules, retention, health;
- ``config``: the settings and their defaults.

Other modules share the engine through ``get_engine(app)`` (the replay cache keeps its table there).
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Callable

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cds_service.store.config import StoreSettings, load_store_settings
from cds_service.store.engine import DatabaseLimits, StoreConfigError, make_engine, normalise_url, sqlite_path
from cds_service.store.feedback_store import FeedbackStore, Retention, SuppressionRules
from cds_service.store.schema import card_issue, feedback, metadata, seen_jti, settings

ENGINE_KEY = "trialcds.engine"
STORE_KEY = "trialcds.store"
SETTINGS_KEY = "trialcds.store_settings"

__all__ = ["DatabaseLimits", "FeedbackStore", "Retention", "StoreConfigError", "StoreSettings", "SuppressionRules",
           "card_issue", "feedback", "get_engine", "get_settings", "get_store", "init_app", "make_engine",
           "metadata", "prepare_database", "seen_jti", "settings"]


def init_app(app: Flask) -> None:
    """Open the store for ``app`` (``create_app``). Production: the database must already exist at the
    current schema (``trialcds db upgrade``); ``TRIALCDS_DEV`` — or ``TRIALCDS_DB_UPGRADE`` passed to
    ``create_app`` by a test, never read from the environment — creates or upgrades it.
    Raises StoreConfigError with a one-line reason."""
    from cds_service.store import migrate

    store_settings = load_store_settings(ChainMap(dict(app.config), dict(os.environ)))
    url = app.config["TRIALCDS_DATABASE_URL"]
    engine = make_engine(url, store_settings.limits)
    salt: str | Callable[[], str]
    if app.config.get("TRIALCDS_DEV") or app.config.get("TRIALCDS_DB_UPGRADE"):
        # An in-memory database exists only inside its engine: migrate that one.
        migrate.upgrade_database(url, engine=engine if _in_memory(url) else None)
        salt = app.config.get("TRIALCDS_SALT") or _read_salt(engine)
    elif _checked_by_parent():
        # A serve worker: the master proved the database before forking. A worker may also start
        # later — a respawn after another died, e.g. of SIGBUS on a truncated file — while the
        # database is broken, and a worker that fails to boot makes gunicorn halt the whole service.
        # So it boots without touching the database, answers 503 while it is broken, and reads the
        # salt at the first call that finds it working.
        salt = app.config.get("TRIALCDS_SALT") or _salt_when_ready(engine)
    else:
        migrate.check_ready(url)
        salt = app.config.get("TRIALCDS_SALT") or _read_salt(engine)
    app.extensions[ENGINE_KEY] = engine
    app.extensions[SETTINGS_KEY] = store_settings
    app.extensions[STORE_KEY] = FeedbackStore(engine, salt, store_settings.rules, store_settings.retention)


def _read_salt(engine: Engine) -> str:
    from cds_service.store import migrate

    salt = migrate.stored_salt(engine)
    if not salt:
        raise StoreConfigError("the database has no patient-hash salt; run `trialcds db upgrade`")
    return salt


def _salt_when_ready(engine: Engine) -> Callable[[], str]:
    """Reads the salt at the first call that needs it, through the app's own engine (its time limits):
    ``DatabaseNotReady`` or another SQLAlchemyError — the call answers 503 — until the database is
    back at the current schema. Nothing is read at boot, so a broken database cannot delay it."""
    from cds_service.store import migrate

    def read() -> str:
        state = migrate.schema_state(engine)
        if not state.is_current:
            raise DatabaseNotReady(f"schema {state.current}, expected {state.head}")
        try:
            return _read_salt(engine)
        except StoreConfigError as exc:
            raise DatabaseNotReady(str(exc)) from None

    return read


class DatabaseNotReady(SQLAlchemyError):
    """The database the master checked is, for now, missing, broken or unreadable."""


_checked_by_pid: int | None = None  # the process whose prepare_database proved the database


def _checked_by_parent() -> bool:
    return _checked_by_pid is not None and _checked_by_pid == os.getppid()


def prepare_database(url: str, *, dev: bool) -> None:
    """``trialcds serve``'s master process, before any worker starts: ``--dev`` creates or upgrades
    the database; production only checks it (StoreConfigError: one line, the command exits non-zero)."""
    from cds_service.store import migrate

    global _checked_by_pid
    if dev:
        if not _in_memory(url):
            migrate.upgrade_database(url)
    else:
        migrate.check_ready(url)
        _checked_by_pid = os.getpid()  # inherited by the workers forked from this process


def _in_memory(url: str) -> bool:
    parsed = normalise_url(url)
    return parsed.get_backend_name() == "sqlite" and sqlite_path(parsed) is None


def get_settings(app: Flask) -> StoreSettings:
    return app.extensions[SETTINGS_KEY]


def get_engine(app: Flask) -> Engine:
    """The application's engine, for modules that keep their own tables in the same database."""
    return app.extensions[ENGINE_KEY]


def get_store(app: Flask) -> FeedbackStore:
    return app.extensions[STORE_KEY]
