"""The database as a real dependency: migrations create and adopt it; production never creates one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, insert, select, text

from cds_service.app import create_app
from cds_service.store import StoreConfigError, card_issue, make_engine, migrate, settings
from tests.serve_process import REPO_ROOT, TRIALCDS


def columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def salt_of(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return migrate.stored_salt(engine)
    finally:
        engine.dispose()


def test_upgrade_creates_the_newest_schema_with_a_salt(db_url):
    before, after = migrate.upgrade_database(db_url)
    assert (before, after) == (None, migrate.head_revision())
    assert "user_hash" in columns(db_url, "card_issue") and "user_hash" in columns(db_url, "feedback")
    salt = salt_of(db_url)
    assert salt and len(salt) == 64
    migrate.check_ready(db_url)  # no exception


def test_upgrade_twice_changes_nothing_and_keeps_the_salt(migrated_url):
    salt = salt_of(migrated_url)
    assert migrate.upgrade_database(migrated_url) == (migrate.head_revision(), migrate.head_revision())
    assert salt_of(migrated_url) == salt


def test_a_database_from_before_migrations_is_adopted_with_its_data_and_salt(db_url):
    # What earlier versions left behind: the tables of revision 0001, no alembic_version, a salt, cards.
    engine = make_engine(db_url, create=True)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(insert(settings).values(name=migrate.SALT_SETTING, value="old-salt"))
        conn.execute(text("INSERT INTO card_issue (card_uuid, service_id, patient_hash, issued_at) "
                          "VALUES ('c-1', 'nct05271110', 'h', '2026-11-01 10:00:00')"))
    engine.dispose()
    assert "user_hash" not in columns(db_url, "card_issue")
    with pytest.raises(StoreConfigError, match="no trialcds schema"):
        migrate.check_ready(db_url)

    assert migrate.upgrade_database(db_url) == (None, migrate.head_revision())
    assert salt_of(db_url) == "old-salt"
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(card_issue.c.card_uuid, card_issue.c.user_hash)).all() == [("c-1", None)]
    engine.dispose()


def test_an_outdated_database_is_refused_until_upgraded(db_url):
    engine = make_engine(db_url, create=True)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0001")
    engine.dispose()
    with pytest.raises(StoreConfigError, match="is at schema 0001"):
        migrate.check_ready(db_url)
    migrate.upgrade_database(db_url)
    migrate.check_ready(db_url)


def test_an_empty_postgresql_database_is_refused(postgres):
    url = postgres.create_database()
    with pytest.raises(StoreConfigError, match="no trialcds schema"):
        migrate.check_ready(url)


def test_production_app_refuses_a_missing_sqlite_file_and_creates_nothing(tmp_path):
    path = tmp_path / "missing" / "trialcds.sqlite"
    with pytest.raises(StoreConfigError, match="does not exist"):
        create_app({"TRIALCDS_DATABASE_URL": f"sqlite:///{path}", "TRIALCDS_DEV": False})
    assert not path.exists() and not path.parent.exists()


def test_dev_app_creates_and_upgrades(tmp_path):
    path = tmp_path / "dev.sqlite"
    app = create_app({"TRIALCDS_DATABASE_URL": f"sqlite:///{path}", "TRIALCDS_DEV": True})
    assert path.exists()
    migrate.check_ready(f"sqlite:///{path}")
    app.extensions["trialcds.engine"].dispose()


def run_trialcds(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALCDS_")}
    env.update(env_extra)
    return subprocess.run([TRIALCDS, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_production_serve_refuses_a_missing_database_in_one_line(tmp_path):
    path = tmp_path / "never-created.sqlite"
    clients = tmp_path / "clients.json"
    clients.write_text('{"clients": [{"iss": "https://ehr.example.org/", "jwks_url": "https://ehr.example.org/jwks"}]}')
    result = run_trialcds(["serve", "--port", "1"], {
        "TRIALCDS_DATABASE_URL": f"sqlite:///{path}", "TRIALCDS_CLIENTS_FILE": str(clients),
        "TRIALCDS_PUBLIC_URL": "https://cds.example.org"})
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "does not exist" in errors[0] and "db upgrade" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not path.exists()


def test_db_upgrade_then_current(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert run_trialcds(["db", "current"], {"TRIALCDS_DATABASE_URL": url}).returncode == 1
    upgraded = run_trialcds(["db", "upgrade"], {"TRIALCDS_DATABASE_URL": url})
    assert upgraded.returncode == 0 and migrate.head_revision() in upgraded.stdout
    current = run_trialcds(["db", "--database-url", url, "current"], {})
    assert current.returncode == 0 and f"schema {migrate.head_revision()}" in current.stdout


def test_a_missing_postgresql_driver_is_one_line(tmp_path):
    # A psycopg that cannot be imported, as on an install without the [postgres] extra.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "psycopg.py").write_text("raise ImportError('No module named psycopg')\n")
    result = run_trialcds(["db", "current"], {"TRIALCDS_DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
                                               "PYTHONPATH": str(shadow)})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "trialcds[postgres]" in result.stderr and "Traceback" not in result.stderr


def test_migrations_ship_inside_the_package():
    import cds_service.migrations as package

    versions = Path(package.__file__).parent / "versions"
    assert sorted(p.name for p in versions.glob("0*.py")) == ["0001_initial.py", "0002_feedback_rules.py"]
