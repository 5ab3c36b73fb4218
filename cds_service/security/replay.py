"""Seen-``jti`` store: a JWT is accepted at most once, across every gunicorn worker.

An in-process set would let a captured token be replayed against another worker, so the store
is a table in the service's database. The primary key makes "insert or fail" atomic in the
database itself; rows expire with the token (a replay after ``exp`` fails the ``exp`` check).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import Column, Float, MetaData, String, Table, delete, insert, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

metadata = MetaData()

seen_jti = Table(
    "trialcds_seen_jti",
    metadata,
    # sha256(iss NUL jti): fixed width whatever the client sends, and scoped per issuer so two
    # EHRs can never burn each other's nonces.
    Column("key", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)

PURGE_INTERVAL = 60.0


class ReplayCache:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._next_purge = 0.0
        try:
            ensure_table(engine)
        except SQLAlchemyError:
            # The database is broken right now (a worker respawned during an outage, issue 11): a worker
            # that cannot boot makes gunicorn halt the whole service. Claims fail → 503 until it is back;
            # in production the table comes from the migrations anyway.
            pass

    def claim(self, iss: str, jti: str, expires_at: float) -> bool:
        """Record the token; False when this (iss, jti) was already used and has not expired."""
        key = hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()
        now = self._clock()
        self._maybe_purge(now)
        try:
            with self._engine.begin() as conn:
                # An expired row with the same key is dead weight, not a replay.
                conn.execute(delete(seen_jti).where(seen_jti.c.key == key, seen_jti.c.expires_at < now))
                conn.execute(insert(seen_jti).values(key=key, expires_at=float(expires_at)))
        except IntegrityError:
            return False
        return True

    def _maybe_purge(self, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL
        with self._engine.begin() as conn:
            conn.execute(delete(seen_jti).where(seen_jti.c.expires_at < now))


def ensure_table(engine: Engine) -> None:
    try:
        metadata.create_all(engine, tables=[seen_jti], checkfirst=True)
    except (OperationalError, ProgrammingError):
        # Several gunicorn workers may race to create it; losing the race is fine.
        if not inspect(engine).has_table(seen_jti.name):
            raise
