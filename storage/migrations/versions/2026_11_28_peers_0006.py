"""peers: buddy opt-ins, pairs (never the same two twice), seats (one open pair each), circles, win stories

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "peer_optin",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("seeking", sa.String(length=8), nullable=False),
        sa.Column("share_city", sa.Boolean(), nullable=False),
        sa.Column("opted_in_at", Time, nullable=False),
        sa.Column("waiting_told_at", Time, nullable=True),
        sa.Column("compose_at", Time, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_peer_optin_user_id_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_peer_optin")),
    )
    op.create_index("ix_peer_optin_opted_in_at", "peer_optin", ["opted_in_at"])  # matching: longest-waiting first
    op.create_table(
        "peer_pair",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_low", BigId, nullable=True),
        sa.Column("user_high", BigId, nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("low_accepted_at", Time, nullable=True),
        sa.Column("high_accepted_at", Time, nullable=True),
        sa.Column("proposed_at", Time, nullable=False),
        sa.Column("started_at", Time, nullable=True),
        sa.Column("last_message_at", Time, nullable=True),
        sa.Column("ended_at", Time, nullable=True),
        sa.Column("ended_reason", sa.String(length=16), nullable=True),
        sa.Column("notice_at", Time, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_low"], ["user.id"], name=op.f("fk_peer_pair_user_low_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_high"], ["user.id"], name=op.f("fk_peer_pair_user_high_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer_pair")),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_peer_pair_user_low_user_high", "peer_pair", ["user_low", "user_high"], unique=True)
    op.create_index("ix_peer_pair_user_high", "peer_pair", ["user_high"])
    op.create_index("ix_peer_pair_status", "peer_pair", ["status"])
    op.create_table(
        "peer_seat",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("pair_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_peer_seat_user_id_user"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["peer_pair.id"], name=op.f("fk_peer_seat_pair_id_peer_pair"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_peer_seat")),
    )
    op.create_index("ix_peer_seat_pair_id", "peer_seat", ["pair_id"])
    op.create_table(
        "circle_member",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("joined_at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_circle_member_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_circle_member")),
    )
    op.create_table(
        "circle_digest",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("cursor_user_id", sa.BigInteger(), nullable=False),
        sa.Column("enqueued", sa.Integer(), nullable=False),
        sa.Column("finished_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_circle_digest")),
    )
    op.create_table(
        "win_story",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("asked_at", Time, nullable=False),
        sa.Column("written_at", Time, nullable=True),
        sa.Column("decided_at", Time, nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_win_story_user_id_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_win_story")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_win_story_user_id_status", "win_story", ["user_id", "status"])
    op.create_index("ix_win_story_status_decided_at", "win_story", ["status", "decided_at"])


def downgrade() -> None:
    op.drop_index("ix_win_story_status_decided_at", table_name="win_story")
    op.drop_index("ix_win_story_user_id_status", table_name="win_story")
    op.drop_table("win_story")
    op.drop_table("circle_digest")
    op.drop_table("circle_member")
    op.drop_index("ix_peer_seat_pair_id", table_name="peer_seat")
    op.drop_table("peer_seat")
    op.drop_index("ix_peer_pair_status", table_name="peer_pair")
    op.drop_index("ix_peer_pair_user_high", table_name="peer_pair")
    op.drop_index("uq_peer_pair_user_low_user_high", table_name="peer_pair")
    op.drop_table("peer_pair")
    op.drop_index("ix_peer_optin_opted_in_at", table_name="peer_optin")
    op.drop_table("peer_optin")
