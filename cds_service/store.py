"""Durable state (SQLAlchemy 2 Core): cards issued, clinicians' feedback, and card suppression.

``TRIALCDS_DATABASE_URL`` picks the database (SQLite by default; only portable SQL is used, so
PostgreSQL works too). Patients are known only by a salted HMAC of their id — the raw id is never
stored. A card's uuid is recorded with that hash when the card is sent, because feedback names the
card, not the patient. After a card is overridden, the patient gets no card from that service for
``TRIALCDS_SUPPRESS_DAYS`` days.

Free-text ``userComment``s are not stored: they may hold patient details the hash is there to avoid.
Other modules share the engine through ``get_engine(app)`` and may add their own tables to it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import (Column, DateTime, Engine, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        bindparam, create_engine, event, func, select, text)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from cds_service.protocol import Feedback

ENGINE_KEY = "trialcds.engine"
STORE_KEY = "trialcds.store"
SALT_SETTING = "patient-hash-salt"

metadata = MetaData()

settings = Table(
    "trialcds_setting", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

card_issue = Table(
    "card_issue", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("patient_hash", String(64), nullable=False),
    Column("issued_at", DateTime, nullable=False),
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("outcome_at", DateTime, nullable=False),  # outcomeTimestamp, UTC
    Column("override_system", String(255)),
    Column("override_code", String(255)),
    Column("accepted_suggestions", Text),  # suggestion uuids, space-separated
    Column("patient_hash", String(64)),  # from card_issue; null for a card this store never issued
    Column("received_at", DateTime, nullable=False),
    # A client may deliver the same feedback more than once (the spec says so): store it once.
    UniqueConstraint("card_uuid", "outcome", "outcome_at", name="uq_feedback_delivery"),
    Index("ix_feedback_suppression", "patient_hash", "service_id", "outcome", "outcome_at"),
)


# --- engine --------------------------------------------------------------------------------------------

def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        # One shared connection, or each thread would see its own empty in-memory database.
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # Several gunicorn workers write the same file: wait for the lock instead of failing at once.
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead log, synced at checkpoints: every hook call records the card it sent, and in the
    default rollback-journal mode each such commit waits for several fsyncs (milliseconds on a busy
    disk, and the workers queue behind one another's). With WAL readers never block the writer, and
    with ``synchronous=NORMAL`` a crash of the service loses nothing; an OS crash or power cut may roll
    back the last commits, never corrupt the file (https://www.sqlite.org/wal.html)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def init_database(engine: Engine) -> None:
    """Create the tables (idempotent; safe on every start)."""
    metadata.create_all(engine)


def get_engine(app: Flask) -> Engine:
    """The application's engine, for modules that keep their own tables in the same database."""
    return app.extensions[ENGINE_KEY]


def get_store(app: Flask) -> FeedbackStore:
    return app.extensions[STORE_KEY]


def stored_salt(engine: Engine) -> str:
    """The patient-hash salt kept in the database, created on first use so it survives restarts."""
    query = select(settings.c.value).where(settings.c.name == SALT_SETTING)
    with engine.begin() as conn:
        salt = conn.execute(query).scalar_one_or_none()
    if salt:
        return salt
    try:
        with engine.begin() as conn:
            conn.execute(settings.insert().values(name=SALT_SETTING, value=secrets.token_hex(32)))
    except IntegrityError:
        pass  # another worker created it first: use theirs
    with engine.begin() as conn:
        return conn.execute(query).scalar_one()


# --- the store -----------------------------------------------------------------------------------------

def _utc_naive(moment: datetime) -> datetime:
    """Stored timestamps are naive UTC: SQLite keeps no offsets, and the same code must run on both."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


# The two statements of every hook call, built once: constructing a statement (and its cache key)
# costs SQLAlchemy more than SQLite takes to run it.
_SUPPRESSION_QUERY = (select(func.count()).select_from(feedback)
                      .where(feedback.c.patient_hash == bindparam("patient_hash"),
                             feedback.c.service_id == bindparam("service_id"),
                             feedback.c.outcome == "overridden",
                             feedback.c.outcome_at >= bindparam("since")))
_CARD_ISSUE_INSERT = card_issue.insert()


class FeedbackStore:
    def __init__(self, engine: Engine, salt: str) -> None:
        self.engine = engine
        self._salt = salt.encode()

    def __repr__(self) -> str:  # never the salt
        return f"<FeedbackStore {self.engine.url.render_as_string(hide_password=True)}>"

    def patient_hash(self, patient_id: str) -> str:
        return hmac.new(self._salt, patient_id.encode(), hashlib.sha256).hexdigest()

    def record_card(self, card_uuid: str, service_id: str, patient_id: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(_CARD_ISSUE_INSERT, {"card_uuid": card_uuid, "service_id": service_id,
                                              "patient_hash": self.patient_hash(patient_id),
                                              "issued_at": _utc_naive(now)})

    def record_feedback(self, service_id: str, item: Feedback, now: datetime) -> bool:
        """Store one feedback entry; False when this exact delivery was already stored."""
        reason = item.overrideReason.reason if item.overrideReason else None
        row = dict(
            card_uuid=item.card[:64], service_id=service_id, outcome=item.outcome,
            outcome_at=_utc_naive(item.outcomeTimestamp),
            override_system=reason.system[:255] if reason else None,
            override_code=reason.code[:255] if reason else None,
            accepted_suggestions=" ".join(s.id for s in item.acceptedSuggestions or ()) or None,
            patient_hash=self._issued_to(item.card[:64]), received_at=_utc_naive(now))
        try:
            with self.engine.begin() as conn:
                conn.execute(feedback.insert().values(**row))
        except IntegrityError:
            return False
        return True

    def _issued_to(self, card_uuid: str) -> str | None:
        with self.engine.begin() as conn:
            return conn.execute(select(card_issue.c.patient_hash)
                                .where(card_issue.c.card_uuid == card_uuid)).scalar_one_or_none()

    def is_suppressed(self, service_id: str, patient_id: str, now: datetime, days: int) -> bool:
        """True when a card of this service was overridden for this patient in the last ``days`` days."""
        since = _utc_naive(now) - timedelta(days=days)
        with self.engine.begin() as conn:
            return conn.execute(_SUPPRESSION_QUERY, {"patient_hash": self.patient_hash(patient_id),
                                                     "service_id": service_id, "since": since}).scalar_one() > 0

    def feedback_count(self, card_uuid: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(select(func.count()).select_from(feedback)
                                .where(feedback.c.card_uuid == card_uuid)).scalar_one()

    def healthy(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True
