"""Fixtures of the screening tests: the seed patients at their anchor date and rebased to today."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles
from cds_service.trials import get_trial


@pytest.fixture(scope="session")
def trial():
    return get_trial("nct05271110")


@pytest.fixture(scope="session")
def seeds() -> dict[str, dict]:
    """slug → seed Bundle, at the anchor as-of date of seeds/expected.json."""
    return seed_bundles()


@pytest.fixture(scope="session")
def as_of():
    return anchor_date()


@pytest.fixture(scope="session")
def today():
    return datetime.now(timezone.utc).date()


@pytest.fixture(scope="session")
def seeds_today(today) -> dict[str, dict]:
    """The seed Bundles moved to today (the hook always decides as of today)."""
    return {slug: rebase_bundle(b, anchor_date(), today) for slug, b in seed_bundles().items()}
