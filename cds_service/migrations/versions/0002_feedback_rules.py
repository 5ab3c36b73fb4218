"""Issue 10's feedback rules: who was shown a card (for a plain dismiss), and retention by age.

``user_hash`` on ``card_issue`` is the salted hash of the ``userId`` of the hook call that showed the
card; ``feedback`` copies it (and the patient hash) when feedback arrives, so the one suppression
lookup of a hook call reads a single table. Existing rows keep a null user: a plain dismiss
recorded before this migration hides nothing (it used to hide the card from everyone; the rules now
say it should not). ``ix_card_issue_issued_at`` lets retention purge old issued cards by age.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("card_issue") as batch:
        batch.add_column(sa.Column("user_hash", sa.String(64), nullable=True))
        batch.create_index("ix_card_issue_issued_at", ["issued_at"])
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("user_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("user_hash")
    with op.batch_alter_table("card_issue") as batch:
        batch.drop_index("ix_card_issue_issued_at")
        batch.drop_column("user_hash")
