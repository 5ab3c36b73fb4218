"""The tables of trialcds before migrations existed: settings (the salt), issued cards, feedback, seen JWTs.

Databases created by earlier versions (``metadata.create_all``) already have some or all of them:
only the missing ones are created, so such a database is adopted as it is, with its salt.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "trialcds_setting" not in existing:
        op.create_table(
            "trialcds_setting",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("value", sa.Text, nullable=False))
    if "card_issue" not in existing:
        op.create_table(
            "card_issue",
            sa.Column("card_uuid", sa.String(64), primary_key=True),
            sa.Column("service_id", sa.String(64), nullable=False),
            sa.Column("patient_hash", sa.String(64), nullable=False),
            sa.Column("issued_at", sa.DateTime, nullable=False))
    if "feedback" not in existing:
        op.create_table(
            "feedback",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("card_uuid", sa.String(64), nullable=False),
            sa.Column("service_id", sa.String(64), nullable=False),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("outcome_at", sa.DateTime, nullable=False),
            sa.Column("override_system", sa.String(255)),
            sa.Column("override_code", sa.String(255)),
            sa.Column("accepted_suggestions", sa.Text),
            sa.Column("patient_hash", sa.String(64)),
            sa.Column("received_at", sa.DateTime, nullable=False),
            sa.UniqueConstraint("card_uuid", "outcome", "outcome_at", name="uq_feedback_delivery"))
        op.create_index("ix_feedback_suppression", "feedback",
                        ["patient_hash", "service_id", "outcome", "outcome_at"])
    if "trialcds_seen_jti" not in existing:
        op.create_table(
            "trialcds_seen_jti",
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("expires_at", sa.Float, nullable=False))
        op.create_index("ix_trialcds_seen_jti_expires_at", "trialcds_seen_jti", ["expires_at"])


def downgrade() -> None:
    for table in ("trialcds_seen_jti", "feedback", "card_issue", "trialcds_setting"):
        op.drop_table(table)
