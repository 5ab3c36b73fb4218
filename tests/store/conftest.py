"""Store tests run against both databases the service supports: a SQLite file and a real PostgreSQL
server (a throw-away cluster started once for the session, tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import PostgresServer, pg_bin, postgres_cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: run scripts/system-deps.sh (Debian's postgresql)")
    with postgres_cluster() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A new, empty database of each kind (not yet migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def migrated_url(db_url) -> str:
    from cds_service.store import migrate

    migrate.upgrade_database(db_url)
    return db_url
