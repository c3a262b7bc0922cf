"""One-time registration keys for LTI Dynamic Registration (`learnhub lti registration-url`)."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learnhub_lti13_registration_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("made_by", sa.String(255), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_learnhub_lti13_registration_keys_expires",
        "learnhub_lti13_registration_keys",
        ["expires"],
    )


def downgrade() -> None:
    op.drop_index("ix_learnhub_lti13_registration_keys_expires", "learnhub_lti13_registration_keys")
    op.drop_table("learnhub_lti13_registration_keys")
