"""Cards issued, clinicians' feedback, and when a card is not shown again (cds-contract.md, "Feedback").

A card's uuid is recorded with the hashes of its patient and of the user it was shown to, because
feedback names only the card. Feedback is kept only for cards this service issued; its reason code
decides how long, and for whom, the patient's card stays hidden:

- ``accepted``: a suggestion of ours was accepted — the patient is in the study's pipeline, no card
  for anyone for ``accepted_days`` (default 180);
- ``overridden`` with a reason: no card for anyone for the reason's days (default 30);
- ``overridden`` without a reason (a plain dismiss): no card for the user who was shown it, for
  ``dismiss_days`` (default 1).

Free-text ``userComment``s are not stored: they may hold patient details the hashes are there to avoid.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from sqlalchemy import Engine, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cds_service.protocol import Feedback
from cds_service.store.engine import display_url
from cds_service.store.schema import card_issue, feedback, settings

log = logging.getLogger(__name__)

FeedbackResult = Literal["stored", "duplicate", "not-issued"]
HEARTBEAT_SETTING = "healthz-heartbeat"
# Rows read by one suppression lookup, newest first: plenty for one patient's feedback in a window.
MAX_SUPPRESSION_ROWS = 200


@dataclass(frozen=True)
class SuppressionRules:
    accepted_days: int = 180  # TRIALCDS_ACCEPTED_DAYS
    override_days: int = 30  # TRIALCDS_OVERRIDE_DAYS
    override_days_by_reason: Mapping[str, int] = field(default_factory=dict)  # TRIALCDS_OVERRIDE_DAYS_BY_REASON
    dismiss_days: int = 1  # TRIALCDS_DISMISS_DAYS

    def days_for_reason(self, code: str) -> int:
        return self.override_days_by_reason.get(code, self.override_days)

    @property
    def longest_days(self) -> int:
        return max(self.accepted_days, self.override_days, self.dismiss_days,
                   *self.override_days_by_reason.values())


@dataclass(frozen=True)
class Retention:
    """How long rows are kept. Issued cards and feedback: until no rule can use them any more, plus a
    margin for late feedback (default: the longest rule + 7 days). Purged at most once a minute per
    worker, in a background thread, never in the hook call's own time."""

    keep_days: int = 187  # TRIALCDS_RETENTION_DAYS
    purge_interval_s: float = 60.0


def _utc_naive(moment: datetime) -> datetime:
    """Stored timestamps are naive UTC: SQLite keeps no offsets, and the same code must run on both."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


# The statements of every hook call, built once: constructing a statement (and its cache key)
# costs SQLAlchemy more than SQLite takes to run it.
_SUPPRESSION_QUERY = (select(feedback.c.outcome, feedback.c.override_code, feedback.c.outcome_at,
                             feedback.c.user_hash)
                      .where(feedback.c.patient_hash == bindparam("patient_hash"),
                             feedback.c.service_id == bindparam("service_id"),
                             feedback.c.outcome_at >= bindparam("since"))
                      .order_by(feedback.c.outcome_at.desc())
                      .limit(MAX_SUPPRESSION_ROWS))
_CARD_ISSUE_INSERT = card_issue.insert()
_ISSUED_CARD_QUERY = (select(card_issue.c.patient_hash, card_issue.c.user_hash)
                      .where(card_issue.c.card_uuid == bindparam("card_uuid"),
                             card_issue.c.service_id == bindparam("service_id")))


class FeedbackStore:
    def __init__(self, engine: Engine, salt: str | Callable[[], str], rules: SuppressionRules = SuppressionRules(),
                 retention: Retention = Retention()) -> None:
        """``salt``: the salt, or how to read it once the database answers (a worker started while
        its database was broken: it answers 503 until then, see ``store.init_app``)."""
        self.engine = engine
        self.rules = rules
        self.retention = retention
        self._salt_source = salt if callable(salt) else None
        self._salt_bytes = salt.encode() if isinstance(salt, str) else None
        self._salt_lock = threading.Lock()
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()

    def __repr__(self) -> str:  # never the salt
        return f"<FeedbackStore {display_url(self.engine)}>"

    # --- hashes ------------------------------------------------------------------------------------

    @property
    def _salt(self) -> bytes:
        if self._salt_bytes is None:
            with self._salt_lock:
                if self._salt_bytes is None:
                    assert self._salt_source is not None
                    # SQLAlchemyError while the database is still broken: the caller answers 503.
                    self._salt_bytes = self._salt_source().encode()
        return self._salt_bytes

    def patient_hash(self, patient_id: str) -> str:
        return hmac.new(self._salt, patient_id.encode(), hashlib.sha256).hexdigest()

    def user_hash(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        # Domain-separated from patient hashes: a user id equal to a patient id hashes differently.
        return hmac.new(self._salt, b"user\x00" + user_id.encode(), hashlib.sha256).hexdigest()

    # --- hook calls --------------------------------------------------------------------------------

    def record_card(self, card_uuid: str, service_id: str, patient_id: str, now: datetime,
                    user_id: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(_CARD_ISSUE_INSERT, {"card_uuid": card_uuid, "service_id": service_id,
                                              "patient_hash": self.patient_hash(patient_id),
                                              "user_hash": self.user_hash(user_id),
                                              "issued_at": _utc_naive(now)})
        self.purge_if_due()

    def suppression(self, service_id: str, patient_id: str, user_id: str | None, now: datetime) -> str | None:
        """Why this patient's card is not shown now, or None to show it: ``"accepted"``,
        ``"overridden:<reason code>"`` or ``"dismissed-by-user"``. One query."""
        rules, now_naive = self.rules, _utc_naive(now)
        with self.engine.connect() as conn:
            rows = conn.execute(_SUPPRESSION_QUERY, {
                "patient_hash": self.patient_hash(patient_id), "service_id": service_id,
                "since": now_naive - timedelta(days=rules.longest_days)}).all()
        user = self.user_hash(user_id)
        dismissed, overridden = False, None
        for outcome, code, at, shown_to in rows:
            age = now_naive - at
            if outcome == "accepted":
                if age <= timedelta(days=rules.accepted_days):
                    return "accepted"
            elif code:
                if overridden is None and age <= timedelta(days=rules.days_for_reason(code)):
                    overridden = f"overridden:{code}"
            elif user is not None and shown_to == user and age <= timedelta(days=rules.dismiss_days):
                dismissed = True
        return overridden or ("dismissed-by-user" if dismissed else None)

    def is_suppressed(self, service_id: str, patient_id: str, now: datetime, days: int | None = None,
                      user_id: str | None = None) -> bool:
        """The old yes/no question, kept for callers not yet asking ``suppression`` (``days`` is
        ignored: the durations are the store's rules now)."""
        return self.suppression(service_id, patient_id, user_id, now) is not None

    # --- feedback ----------------------------------------------------------------------------------

    def record_feedback(self, service_id: str, item: Feedback, now: datetime) -> FeedbackResult:
        """Store one feedback entry for a card this service issued. ``"duplicate"``: this exact delivery
        was already stored; ``"not-issued"``: no such card of ours (nothing stored)."""
        card_uuid = item.card[:64]
        reason = item.overrideReason.reason if item.overrideReason else None
        received = _utc_naive(now)
        try:
            with self.engine.begin() as conn:
                issued = conn.execute(_ISSUED_CARD_QUERY, {"card_uuid": card_uuid, "service_id": service_id}).first()
                if issued is None:
                    return "not-issued"
                conn.execute(feedback.insert().values(
                    card_uuid=card_uuid, service_id=service_id, outcome=item.outcome,
                    # A timestamp from the future would hide the card for longer than the rules say.
                    outcome_at=min(_utc_naive(item.outcomeTimestamp), received),
                    override_system=reason.system[:255] if reason else None,
                    override_code=reason.code[:255] if reason else None,
                    accepted_suggestions=" ".join(s.id for s in item.acceptedSuggestions or ()) or None,
                    patient_hash=issued.patient_hash, user_hash=issued.user_hash, received_at=received))
        except IntegrityError:
            return "duplicate"
        return "stored"

    def feedback_count(self, card_uuid: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(feedback)
                                .where(feedback.c.card_uuid == card_uuid)).scalar_one()

    # --- retention ---------------------------------------------------------------------------------

    def purge_if_due(self, clock: float | None = None) -> bool:
        """Start a purge in the background when the last one is a minute old. True if one started."""
        moment = time.monotonic() if clock is None else clock
        if moment < self._next_purge or not self._purge_lock.acquire(blocking=False):
            return False
        self._next_purge = moment + self.retention.purge_interval_s
        threading.Thread(target=self._purge_in_background, name="trialcds-purge", daemon=True).start()
        return True

    def _purge_in_background(self) -> None:
        try:
            self.purge(datetime.now(timezone.utc))
        except SQLAlchemyError as exc:
            log.warning("retention purge failed: %s", type(exc).__name__)
        finally:
            self._purge_lock.release()

    def purge(self, now: datetime) -> tuple[int, int]:
        """Delete issued cards and feedback older than the retention period: (cards, feedback) deleted."""
        cutoff = _utc_naive(now) - timedelta(days=self.retention.keep_days)
        with self.engine.begin() as conn:
            cards = conn.execute(delete(card_issue).where(card_issue.c.issued_at < cutoff)).rowcount
            entries = conn.execute(delete(feedback).where(feedback.c.received_at < cutoff)).rowcount
        return cards, entries

    # --- health ------------------------------------------------------------------------------------

    def health(self, now: datetime) -> str:
        """``"ok"`` when the database can be read and written right now; else what failed:
        ``"read-only"``, ``"unreachable"``. Bounded by the engine's time limits."""
        try:
            with self.engine.begin() as conn:
                conn.execute(select(settings.c.name).limit(1)).all()
                stamp = _utc_naive(now).isoformat()
                written = conn.execute(update(settings).where(settings.c.name == HEARTBEAT_SETTING)
                                       .values(value=stamp)).rowcount
                if not written:
                    conn.execute(settings.insert().values(name=HEARTBEAT_SETTING, value=stamp))
        except IntegrityError:
            return "ok"  # another worker inserted the heartbeat row first: the write path works
        except SQLAlchemyError as exc:
            return "read-only" if is_read_only(exc) else "unreachable"
        return "ok"

    def healthy(self) -> bool:
        return self.health(datetime.now(timezone.utc)) == "ok"


def is_read_only(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "readonly" in text or "read-only" in text or "read only" in text
