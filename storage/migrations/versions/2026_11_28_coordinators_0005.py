"""coordinators: role grants, cohorts, broadcasts, hand-off tickets and their group posts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "role_grant",
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("granted_at", Time, nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("telegram_user_id", "role", name=op.f("pk_role_grant")),
    )
    op.create_table(
        "cohort",
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("tag", name=op.f("pk_cohort")),
    )
    op.create_table(
        "cohort_member",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("joined_at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_cohort_member_user_id_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["tag"], ["cohort.tag"], name=op.f("fk_cohort_member_tag_cohort"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "tag", name=op.f("pk_cohort_member")),
    )
    op.create_index("ix_cohort_member_tag", "cohort_member", ["tag"])
    op.create_table(
        "broadcast",
        sa.Column("id", BigId, nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=True),
        sa.Column("step_at", Time, nullable=True),
        sa.Column("text_en", sa.Text(), nullable=True),
        sa.Column("text_ur", sa.Text(), nullable=True),
        sa.Column("tip_id", sa.String(length=64), nullable=True),
        sa.Column("segment", sa.JSON(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=True),
        sa.Column("send_at", Time, nullable=True),
        sa.Column("cursor_user_id", sa.BigInteger(), nullable=False),
        sa.Column("enqueued", sa.Integer(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("confirmed_at", Time, nullable=True),
        sa.Column("expanded_at", Time, nullable=True),
        sa.Column("finished_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_broadcast_status_send_at", "broadcast", ["status", "send_at"])
    op.create_index("ix_broadcast_created_by_status", "broadcast", ["created_by", "status"])
    op.create_table(
        "handoff_ticket",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("assignee", sa.BigInteger(), nullable=True),
        sa.Column("show_name", sa.Boolean(), nullable=False),
        sa.Column("opened_at", Time, nullable=False),
        sa.Column("last_activity_at", Time, nullable=False),
        sa.Column("first_answered_at", Time, nullable=True),
        sa.Column("reposted_at", Time, nullable=True),
        sa.Column("reposts", sa.Integer(), nullable=False),
        sa.Column("closed_at", Time, nullable=True),
        sa.Column("closed_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_handoff_ticket_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_ticket")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_handoff_ticket_user_id_status", "handoff_ticket", ["user_id", "status"])
    op.create_index("ix_handoff_ticket_status_last_activity_at", "handoff_ticket", ["status", "last_activity_at"])
    op.create_table(
        "handoff_post",
        sa.Column("outbox_id", BigId, nullable=False),
        sa.Column("ticket_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox_message.id"], name=op.f("fk_handoff_post_outbox_id_outbox_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["handoff_ticket.id"], name=op.f("fk_handoff_post_ticket_id_handoff_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("outbox_id", name=op.f("pk_handoff_post")),
    )  # fmt: skip
    op.create_index("ix_handoff_post_ticket_id", "handoff_post", ["ticket_id"])
    # /stats and /unanswered: feedback and unanswered questions are read by kind and time (ix_event_kind_at covers
    # them); the funnel medians join milestone_done on (milestone, done_at), indexed in 0004.


def downgrade() -> None:
    op.drop_index("ix_handoff_post_ticket_id", table_name="handoff_post")
    op.drop_table("handoff_post")
    op.drop_index("ix_handoff_ticket_status_last_activity_at", table_name="handoff_ticket")
    op.drop_index("ix_handoff_ticket_user_id_status", table_name="handoff_ticket")
    op.drop_table("handoff_ticket")
    op.drop_index("ix_broadcast_created_by_status", table_name="broadcast")
    op.drop_index("ix_broadcast_status_send_at", table_name="broadcast")
    op.drop_table("broadcast")
    op.drop_index("ix_cohort_member_tag", table_name="cohort_member")
    op.drop_table("cohort_member")
    op.drop_table("cohort")
    op.drop_table("role_grant")
