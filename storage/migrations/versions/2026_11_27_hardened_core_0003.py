"""hardened core: ids never reused on SQLite, blocked users, profile step time, indexes for nudges and segments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    # On SQLite the tables are rebuilt with AUTOINCREMENT (a plain INTEGER PRIMARY KEY reuses the largest id after
    # a delete); PostgreSQL sequences never reuse ids, so there nothing is rebuilt.
    recreate = "always" if _is_sqlite() else "auto"
    with op.batch_alter_table("user", recreate=recreate, table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("profile_step_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_user_last_seen_at", ["last_seen_at"])
        batch.create_index("ix_user_created_at", ["created_at"])
    if _is_sqlite():
        with op.batch_alter_table("event", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass
    op.create_index("ix_milestone_done_milestone_done_at", "milestone_done", ["milestone", "done_at"])


def downgrade() -> None:
    op.drop_index("ix_milestone_done_milestone_done_at", table_name="milestone_done")
    with op.batch_alter_table("user") as batch:
        batch.drop_index("ix_user_created_at")
        batch.drop_index("ix_user_last_seen_at")
        batch.drop_column("blocked_at")
        batch.drop_column("profile_step_at")
