"""Issue 10's feedback rules in the store, on SQLite and PostgreSQL: accepted, override with a reason,
plain dismiss (only for that user), only for cards we issued, hashes only, one query per hook call."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from cds_service.protocol import Feedback
from cds_service.store import FeedbackStore, SuppressionRules, card_issue, feedback, make_engine, migrate, seen_jti, settings

SERVICE = "nct05271110"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
PATIENT, DR_A, DR_B = "patient-h5-rules-1", "Practitioner/dr-a", "Practitioner/dr-b"


@pytest.fixture
def store(migrated_url):
    engine = make_engine(migrated_url)
    rules = SuppressionRules(accepted_days=180, override_days=30, override_days_by_reason={"not-interested": 90},
                             dismiss_days=1)
    yield FeedbackStore(engine, migrate.stored_salt(engine), rules)
    engine.dispose()


def shown(store: FeedbackStore, card: str, user: str | None = DR_A, patient: str = PATIENT,
          at: datetime = NOW - timedelta(hours=1)) -> str:
    store.record_card(card, SERVICE, patient, at, user_id=user)
    return card


def entry(card: str, outcome: str, at: datetime, code: str | None = None) -> Feedback:
    data: dict = {"card": card, "outcome": outcome, "outcomeTimestamp": at.isoformat()}
    if outcome == "accepted":
        data["acceptedSuggestions"] = [{"id": "s-1"}]
    if code:
        data["overrideReason"] = {"reason": {"system": "https://trialcds.example/override-reason", "code": code}}
    return Feedback.model_validate(data)


def test_no_feedback_shows_the_card(store):
    shown(store, "c-0")
    assert store.suppression(SERVICE, PATIENT, DR_A, NOW) is None


def test_accepted_hides_the_card_from_everyone_for_the_accepted_days(store):
    card = shown(store, "c-acc")
    assert store.record_feedback(SERVICE, entry(card, "accepted", NOW - timedelta(days=179)), NOW) == "stored"
    assert store.suppression(SERVICE, PATIENT, DR_B, NOW) == "accepted"
    assert store.suppression(SERVICE, PATIENT, DR_A, NOW + timedelta(days=2)) is None


def test_override_with_a_reason_hides_for_everyone_for_that_reasons_days(store):
    card = shown(store, "c-ovr")
    store.record_feedback(SERVICE, entry(card, "overridden", NOW - timedelta(days=29), "patient-declined"), NOW)
    assert store.suppression(SERVICE, PATIENT, DR_B, NOW) == "overridden:patient-declined"
    assert store.suppression(SERVICE, PATIENT, None, NOW) == "overridden:patient-declined"
    assert store.suppression(SERVICE, PATIENT, DR_B, NOW + timedelta(days=2)) is None  # 31 days: over

    card = shown(store, "c-ovr-2")
    store.record_feedback(SERVICE, entry(card, "overridden", NOW - timedelta(days=60), "not-interested"), NOW)
    later = NOW + timedelta(days=2)  # patient-declined has run out; not-interested has 90 days
    assert store.suppression(SERVICE, PATIENT, DR_B, later) == "overridden:not-interested"


def test_a_plain_dismiss_hides_only_from_the_user_who_was_shown_the_card_for_a_day(store):
    card = shown(store, "c-dis", user=DR_A)
    # Feedback carries no userId: the store knows who was shown the card.
    store.record_feedback(SERVICE, entry(card, "overridden", NOW - timedelta(hours=2)), NOW)
    assert store.suppression(SERVICE, PATIENT, DR_A, NOW) == "dismissed-by-user"
    assert store.suppression(SERVICE, PATIENT, DR_B, NOW) is None
    assert store.suppression(SERVICE, PATIENT, None, NOW) is None
    assert store.suppression(SERVICE, PATIENT, DR_A, NOW + timedelta(days=1)) is None


def test_rules_apply_per_patient_and_per_service(store):
    card = shown(store, "c-p1")
    store.record_feedback(SERVICE, entry(card, "overridden", NOW, "patient-declined"), NOW)
    assert store.suppression(SERVICE, "another-patient-h5", DR_A, NOW) is None
    assert store.suppression("other-service", PATIENT, DR_A, NOW) is None


def test_feedback_only_for_cards_this_service_issued(store):
    assert store.record_feedback(SERVICE, entry("never-issued", "overridden", NOW, "x"), NOW) == "not-issued"
    card = shown(store, "c-own")
    assert store.record_feedback("other-service", entry(card, "overridden", NOW, "x"), NOW) == "not-issued"
    assert store.record_feedback(SERVICE, entry(card, "overridden", NOW, "x"), NOW) == "stored"
    assert store.record_feedback(SERVICE, entry(card, "overridden", NOW, "x"), NOW) == "duplicate"
    with store.engine.connect() as conn:
        assert conn.execute(select(feedback.c.card_uuid)).scalars().all() == ["c-own"]


def test_a_timestamp_from_the_future_counts_from_now(store):
    card = shown(store, "c-future")
    store.record_feedback(SERVICE, entry(card, "overridden", NOW + timedelta(days=365), "patient-declined"), NOW)
    assert store.suppression(SERVICE, PATIENT, DR_A, NOW + timedelta(days=31)) is None


def test_the_suppression_lookup_is_one_statement(store):
    card = shown(store, "c-one")
    store.record_feedback(SERVICE, entry(card, "overridden", NOW, "patient-declined"), NOW)
    statements: list[str] = []
    this_thread = threading.get_ident()  # not the background retention purge record_card started

    def seen(conn, cursor, statement, *rest) -> None:
        if threading.get_ident() == this_thread:
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    assert store.suppression(SERVICE, PATIENT, DR_A, NOW) == "overridden:patient-declined"
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1 \
        and len(statements) == 1, statements


def test_only_hashes_are_stored(store):
    card = shown(store, "c-hash", user=DR_A)
    store.record_feedback(SERVICE, entry(card, "overridden", NOW), NOW)
    with store.engine.connect() as conn:
        dumped = " ".join(str(row) for table in (card_issue, feedback, settings, seen_jti)
                          for row in conn.execute(select(table)))
    assert PATIENT not in dumped and DR_A not in dumped and "dr-a" not in dumped
    assert store.patient_hash(PATIENT) in dumped and store.user_hash(DR_A) in dumped
    assert store.user_hash(PATIENT) != store.patient_hash(PATIENT)


def test_is_suppressed_still_answers_for_old_callers(store):
    card = shown(store, "c-old")
    store.record_feedback(SERVICE, entry(card, "overridden", NOW, "patient-declined"), NOW)
    assert store.is_suppressed(SERVICE, PATIENT, NOW, 30) is True
    assert store.is_suppressed(SERVICE, "nobody-h5", NOW, 30) is False


def test_the_same_delivery_sent_concurrently_is_stored_exactly_once(store):
    from concurrent.futures import ThreadPoolExecutor

    card = shown(store, "c-race")
    item = entry(card, "overridden", NOW, "patient-declined")
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: store.record_feedback(SERVICE, item, NOW), range(6)))
    assert sorted(results) == ["duplicate"] * 5 + ["stored"]
    assert store.feedback_count(card) == 1
