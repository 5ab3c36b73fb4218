"""The tables of the service's database, as the newest migration leaves them.

The schema itself is changed only by migrations (``cds_service/migrations/versions``); these table
objects are what the queries are written against. Patients and users are known only by a salted
HMAC of their id (``patient_hash``, ``user_hash``) — never by the raw id.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

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
    # The user of the hook call that showed the card: a plain dismiss hides it from that user only.
    Column("user_hash", String(64)),
    Index("ix_card_issue_issued_at", "issued_at"),  # retention purges by age
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
    Column("patient_hash", String(64)),  # copied from card_issue
    Column("received_at", DateTime, nullable=False),
    Column("user_hash", String(64)),  # copied from card_issue: who was shown the card
    # A client may deliver the same feedback more than once (the spec says so): store it once.
    UniqueConstraint("card_uuid", "outcome", "outcome_at", name="uq_feedback_delivery"),
    Index("ix_feedback_suppression", "patient_hash", "service_id", "outcome", "outcome_at"),
)

# Owned by cds_service/security/replay.py (which declares it on its own metadata); listed here so the
# migrations create it with everything else.
seen_jti = Table(
    "trialcds_seen_jti", metadata,
    Column("key", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)
