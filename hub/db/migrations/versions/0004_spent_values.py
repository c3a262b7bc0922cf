"""One-time values already used: a deep-linking picker's state, once answered."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learnhub_spent_values",
        sa.Column("value_hash", sa.String(64), primary_key=True),
        sa.Column("expires", sa.Float(), nullable=False),
    )
    op.create_index("ix_learnhub_spent_values_expires", "learnhub_spent_values", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_learnhub_spent_values_expires", "learnhub_spent_values")
    op.drop_table("learnhub_spent_values")
