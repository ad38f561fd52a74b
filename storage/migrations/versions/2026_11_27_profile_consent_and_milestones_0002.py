"""profile consent and milestones

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:24:02.210722
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "milestone_done",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("milestone", sa.String(length=48), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_milestone_done_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "milestone", name=op.f("pk_milestone_done")),
    )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skill", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("platforms", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("city", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("profile_step", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("research_consent", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("consent_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("consent_version")
        batch_op.drop_column("research_consent")
        batch_op.drop_column("profile_step")
        batch_op.drop_column("city")
        batch_op.drop_column("platforms")
        batch_op.drop_column("skill")

    op.drop_table("milestone_done")
