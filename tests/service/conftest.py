"""Fixtures of the CDS Hooks service tests: an app per test (own SQLite file), the seed patients
rebased to today's UTC date (the as-of date of every hook call), and request builders."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from cds_service.app import create_app
from cds_service.seeding import anchor_date, load_expected, rebase_bundle, seed_bundles
from cds_service.trials import get_trial


@pytest.fixture(scope="session")
def trial():
    return get_trial("nct05271110")


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    return load_expected()["patients"]


@pytest.fixture(scope="session")
def bundles() -> dict[str, dict]:
    """Seed bundles moved from their anchor date to today (UTC), so windows hold as written."""
    today = datetime.now(timezone.utc).date()
    return {slug: rebase_bundle(bundle, anchor_date(), today) for slug, bundle in seed_bundles().items()}


@pytest.fixture
def make_app(tmp_path):
    def make(**config: Any):
        # TRIALCDS_DB_UPGRADE: the test's new database is created (production mode would refuse it).
        settings = {"TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'trialcds.sqlite'}", "TRIALCDS_DEV": True,
                    "TRIALCDS_DB_UPGRADE": True}
        settings.update(config)
        app = create_app(settings)
        app.config["TESTING"] = True
        return app
    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
