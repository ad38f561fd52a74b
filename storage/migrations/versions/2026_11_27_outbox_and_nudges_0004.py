"""outbox and nudges: outbound messages, planner cursors, experiment arms, proactive settings per user

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("proactive_stopped_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("nudge_pace", sa.String(length=8), server_default="daily", nullable=False))
    op.create_index("ix_milestone_done_done_at", "milestone_done", ["done_at"])
    op.create_table(
        "outbox_message",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quiet_hours", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_outbox_message_user_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_outbox_message_dedupe_key", "outbox_message", ["dedupe_key"], unique=True)
    op.create_index("ix_outbox_message_due", "outbox_message", ["status", "priority", "not_before"])
    op.create_index("ix_outbox_message_user_id_status", "outbox_message", ["user_id", "status"])
    op.create_index("ix_outbox_message_campaign_status", "outbox_message", ["campaign", "status"])
    op.create_index(
        "ix_outbox_message_claimed_until",
        "outbox_message",
        ["claimed_until"],
        postgresql_where=sa.text("status = 'claimed'"),
    )
    op.create_table(
        "planner_cursor",
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("planned_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_planner_cursor")),
    )
    op.create_table(
        "experiment_assignment",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("experiment", sa.String(length=48), nullable=False),
        sa.Column("arm", sa.String(length=32), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_experiment_assignment_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "experiment", name=op.f("pk_experiment_assignment")),
    )


def downgrade() -> None:
    op.drop_table("experiment_assignment")
    op.drop_table("planner_cursor")
    op.drop_index("ix_outbox_message_claimed_until", table_name="outbox_message")
    op.drop_index("ix_outbox_message_campaign_status", table_name="outbox_message")
    op.drop_index("ix_outbox_message_user_id_status", table_name="outbox_message")
    op.drop_index("ix_outbox_message_due", table_name="outbox_message")
    op.drop_index("uq_outbox_message_dedupe_key", table_name="outbox_message")
    op.drop_table("outbox_message")
    op.drop_index("ix_milestone_done_done_at", table_name="milestone_done")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("nudge_pace")
        batch.drop_column("proactive_stopped_at")
