"""Every wait on the database is bounded: statements, pooled connections, a server that stops answering."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError, TimeoutError as PoolTimeout

from cds_service.store import DatabaseLimits, make_engine, migrate
from cds_service.store.engine import watchdog_of


def test_waiting_for_a_pooled_connection_is_bounded(migrated_url):
    engine = make_engine(migrated_url, DatabaseLimits(pool_size=1, max_overflow=0, pool_timeout_s=0.5))
    held = engine.connect()
    try:
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            engine.connect()
        assert 0.4 < time.monotonic() - started < 3
    finally:
        held.close()
        engine.dispose()


def test_a_long_postgresql_statement_is_cancelled_by_the_server(postgres):
    engine = make_engine(postgres.url(), DatabaseLimits(statement_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"):
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(10)"))
    assert time.monotonic() - started < 3
    engine.dispose()


def test_a_frozen_postgresql_is_given_up_on_by_the_watchdog(postgres):
    url = postgres.create_database()
    engine = make_engine(url, DatabaseLimits(statement_timeout_s=1.0, connect_timeout_s=2))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    conn = engine.connect()  # checked out (and pinged) before the freeze: only the watchdog can help
    postgres.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(SQLAlchemyError):
            conn.execute(text("SELECT 1"))
        waited = time.monotonic() - started
        assert waited < 4, f"{waited:.1f} s"  # statement limit 1 s + 1 s + the watchdog's tick
        assert watchdog_of(engine).aborted >= 1
        conn.close()
        started = time.monotonic()
        with pytest.raises(SQLAlchemyError):  # a new connection: the connect timeout
            with engine.connect() as fresh:
                fresh.execute(text("SELECT 1"))
        assert time.monotonic() - started < 5
    finally:
        postgres.resume()
    with engine.connect() as conn:  # and it works again, same engine
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_a_sqlite_write_waits_for_the_lock_only_as_long_as_the_statement_limit(tmp_path):
    migrated_url = f"sqlite:///{tmp_path / 'locked.sqlite'}"
    migrate.upgrade_database(migrated_url)
    engine = make_engine(migrated_url, DatabaseLimits(statement_timeout_s=0.5))
    other = make_engine(migrated_url)
    with other.connect() as locker:
        locker.execute(text("BEGIN IMMEDIATE"))  # another worker holds the write lock
        locker.execute(text("UPDATE trialcds_setting SET value = value"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            with engine.begin() as conn:
                conn.execute(text("UPDATE trialcds_setting SET value = value"))
        assert time.monotonic() - started < 3
        locker.execute(text("ROLLBACK"))
    engine.dispose()
    other.dispose()
