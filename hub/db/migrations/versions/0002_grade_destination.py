"""Where each grade went: learnhub_grade_outbox.destination (a link's cell or line item).

Grades sent before it have none; the enrollments' launches of each link are kept in their
encrypted launch data, which needs no column.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("learnhub_grade_outbox") as batch:
        batch.add_column(sa.Column("destination", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("learnhub_grade_outbox") as batch:
        batch.drop_column("destination")
