"""Schema migrations (Alembic) and the start-up check that the database is the one we expect.

The database holds the salt of every patient and user hash. A new database means a new salt, and a
new salt means every override and dismissal is forgotten — so the service never creates one by
itself when serving: ``trialcds db upgrade`` creates or upgrades it, ``serve`` (production) refuses a
database that is missing or not at the newest revision, and only ``--dev`` upgrades on its own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cds_service.store.engine import StoreConfigError, display_url, make_engine, normalise_url, sqlite_path
from cds_service.store.schema import settings

SALT_SETTING = "patient-hash-salt"
SCRIPT_LOCATION = "cds_service:migrations"


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: no schema yet (a new or pre-migration database)
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        return SchemaState(MigrationContext.configure(conn).get_current_revision(), head_revision())


def upgrade_database(url: str, engine: Engine | None = None) -> tuple[str | None, str]:
    """Create or upgrade the database to the newest schema, and give it a salt if it has none.
    Returns (revision before, revision after). ``engine``: migrate through this one (kept open)."""
    own_engine = engine is None
    engine = engine or make_engine(url, create=True)
    try:
        before = schema_state(engine).current
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            _ensure_salt(conn)
        return before, schema_state(engine).current or ""
    finally:
        if own_engine:
            engine.dispose()


def _ensure_salt(conn: Connection) -> None:
    if conn.execute(select(settings.c.value).where(settings.c.name == SALT_SETTING)).scalar_one_or_none():
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(settings).values(name=SALT_SETTING, value=secrets.token_hex(32)))
    except IntegrityError:
        pass  # created by another process at the same moment: theirs is as good


def stored_salt(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(settings.c.value).where(settings.c.name == SALT_SETTING)).scalar_one_or_none()


def check_ready(url: str) -> None:
    """Raise StoreConfigError (one line) unless the database exists, is at the newest schema and has
    its salt. Opens and closes its own connection."""
    parsed = normalise_url(url)
    path = sqlite_path(parsed)
    hint = "run `trialcds db upgrade` first"
    if path is not None and not path.exists():
        raise StoreConfigError(f"database {path} does not exist; {hint} (a new database means a new salt: "
                               f"every stored override would be forgotten)")
    engine = make_engine(url)
    try:
        state = schema_state(engine)
        if state.current is None:
            raise StoreConfigError(f"database {display_url(engine)} has no trialcds schema; {hint}")
        if not state.is_current:
            raise StoreConfigError(f"database {display_url(engine)} is at schema {state.current}, "
                                   f"this trialcds needs {state.head}; {hint}")
        if not stored_salt(engine):
            raise StoreConfigError(f"database {display_url(engine)} has no patient-hash salt; {hint}")
    except SQLAlchemyError as exc:
        raise StoreConfigError(f"database {display_url(engine)} cannot be used: {type(exc.orig or exc).__name__}: "
                               f"{_first_line(exc.orig or exc)}") from None
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
