"""Rows that can no longer matter are purged; the replay cache works across engines (instances)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from cds_service.protocol import Feedback
from cds_service.security.replay import ReplayCache
from cds_service.store import FeedbackStore, Retention, StoreConfigError, card_issue, feedback, make_engine, migrate, seen_jti
from cds_service.store.config import load_store_settings, parse_days_by_reason

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_purge_removes_only_rows_past_retention(migrated_url):
    engine = make_engine(migrated_url)
    store = FeedbackStore(engine, migrate.stored_salt(engine), retention=Retention(keep_days=187))
    assert store.purge_if_due()  # the worker's first background purge, out of the way of this test's own
    deadline = time.monotonic() + 10
    while store._purge_lock.locked() and time.monotonic() < deadline:
        time.sleep(0.02)
    for name, age in (("old", 200), ("recent", 30)):
        store.record_card(f"c-{name}", "nct05271110", "p-h5-ret", NOW - timedelta(days=age))
        item = Feedback.model_validate({"card": f"c-{name}", "outcome": "overridden",
                                        "outcomeTimestamp": (NOW - timedelta(days=age)).isoformat()})
        assert store.record_feedback("nct05271110", item, NOW - timedelta(days=age)) == "stored"
    assert store.purge(NOW) == (1, 1)
    with engine.connect() as conn:
        assert conn.execute(select(card_issue.c.card_uuid)).scalars().all() == ["c-recent"]
        assert conn.execute(select(feedback.c.card_uuid)).scalars().all() == ["c-recent"]
    engine.dispose()


def test_purge_runs_at_most_once_a_minute_and_off_the_call(migrated_url):
    engine = make_engine(migrated_url)
    store = FeedbackStore(engine, migrate.stored_salt(engine), retention=Retention(keep_days=1, purge_interval_s=60))
    store.record_card("c-stale", "nct05271110", "p-h5-ret2", datetime.now(timezone.utc) - timedelta(days=3))
    # record_card started the first purge in the background; it removes the stale row.
    deadline = time.monotonic() + 10
    while count(engine, card_issue) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(engine, card_issue) == 0
    assert store.purge_if_due(clock=time.monotonic()) is False  # within the minute: not again
    assert store.purge_if_due(clock=time.monotonic() + 61) is True
    engine.dispose()


def test_retention_shorter_than_a_rule_is_refused():
    with pytest.raises(StoreConfigError, match="TRIALCDS_RETENTION_DAYS"):
        load_store_settings({"TRIALCDS_RETENTION_DAYS": "30"})
    settings = load_store_settings({"TRIALCDS_OVERRIDE_DAYS_BY_REASON": "not-interested=365"})
    assert settings.retention.keep_days == 372  # the longest rule + 7 days
    assert parse_days_by_reason("a=1, b=20") == {"a": 1, "b": 20}
    with pytest.raises(StoreConfigError):
        parse_days_by_reason("a=many")


def test_a_token_is_accepted_once_across_two_instances(migrated_url):
    first, second = make_engine(migrated_url), make_engine(migrated_url)  # two services, one database
    clock = [1_000_000.0]
    one, two = ReplayCache(first, clock=lambda: clock[0]), ReplayCache(second, clock=lambda: clock[0])
    assert one.claim("https://ehr.example.org/", "jti-h5-1", clock[0] + 300) is True
    assert two.claim("https://ehr.example.org/", "jti-h5-1", clock[0] + 300) is False
    assert one.claim("https://ehr.example.org/", "jti-h5-1", clock[0] + 300) is False
    # After expiry (+ skew, which the authenticator adds to exp) the row is purged by the next claim.
    clock[0] += 1000
    assert two.claim("https://ehr.example.org/", "jti-h5-2", clock[0] + 300) is True
    with first.connect() as conn:
        assert conn.execute(select(seen_jti.c.key)).scalars().all().__len__() == 1
    first.dispose()
    second.dispose()
