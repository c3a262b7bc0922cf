"""LearnHub's tables as create_all made them before migrations (up to commit 68c73f1).

A database made then has these tables and no version table: upgrading it keeps every table
that exists (and its rows) and creates those missing, e.g. the grading tables of a hub whose
grading service never ran. An existing table without one of these columns is refused.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[tuple[str, list, list]]:
    """(name, columns and constraints, indexes as (name, columns)), parents before children."""
    string, text, floating, integer = sa.String, sa.Text, sa.Float, sa.Integer

    def col(name, kind, *, null=False, **kwargs):
        return sa.Column(name, kind, nullable=null, **kwargs)

    return [
        ("learnhub_lti11_consumers", [
            col("key", string(255), primary_key=True),
            col("secret_enc", text()),
            col("frame_origin", string(255), null=True),
            col("created", floating()),
        ], []),
        ("learnhub_lti11_nonces", [
            col("consumer_key", string(255), primary_key=True),
            col("nonce", string(255), primary_key=True),
            col("timestamp", floating()),
        ], [("ix_learnhub_lti11_nonces_timestamp", ["timestamp"])]),
        ("learnhub_lti13_platforms", [
            col("id", integer(), primary_key=True),
            col("issuer", string(255)),
            col("client_id", string(255)),
            col("auth_url", text()),
            col("jwks_url", text()),
            col("token_url", text()),
            col("frame_origin", string(255), null=True),
            col("created", floating()),
        ], []),
        ("learnhub_tool_keys", [
            col("kid", string(64), primary_key=True),
            col("private_pem_enc", text()),
            col("created", floating()),
            col("retired", floating(), null=True),
            col("active", sa.Boolean()),
        ], []),
        ("learnhub_courses", [
            col("id", string(32), primary_key=True),
            col("platform", string(255)),
            col("context_id", string(255)),
            col("title", text()),
            col("created", floating()),
            col("last_launch", floating()),
        ], [("ix_learnhub_courses_last_launch", ["last_launch"])]),
        ("learnhub_grading_jobs", [
            col("id", integer(), primary_key=True),
            col("course_id", string(32)),
            col("assignment_id", string(128)),
            col("student", string(255)),
            col("submission_id", string(64)),
            col("timestamp", string(64)),
            col("state", string(16)),
            col("attempts", integer()),
            col("lease_until", floating(), null=True),
            col("worker", string(64), null=True),
            col("enqueued", floating()),
            col("started", floating(), null=True),
            col("finished", floating(), null=True),
            col("score", floating(), null=True),
            col("max_score", floating(), null=True),
            col("needs_manual_grade", integer(), null=True),
            col("sandbox", string(16), null=True),
            col("tampered", integer(), null=True),
            col("messages_json", text()),
            sa.UniqueConstraint("course_id", "assignment_id", "student", "submission_id"),
        ], [
            ("ix_learnhub_grading_jobs_course_id", ["course_id"]),
            ("ix_learnhub_grading_jobs_state", ["state"]),
            ("ix_learnhub_grading_jobs_student", ["student"]),
        ]),
        ("learnhub_grade_outbox", [
            col("id", integer(), primary_key=True),
            col("username", string(255)),
            col("course_id", string(64)),
            col("assignment", string(255)),
            col("score", floating()),
            col("max_score", floating()),
            col("pending_manual", sa.Boolean()),
            col("graded_at", floating()),
            col("message_id", string(64)),
            col("state", string(20)),
            col("attempts", integer()),
            col("permanent_failures", integer()),
            col("last_error", text(), null=True),
            col("next_attempt", floating(), null=True),
            col("lease_until", floating(), null=True),
            col("sent_at", floating(), null=True),
            col("lms_status", integer(), null=True),
            col("lti_version", string(8), null=True),
            col("superseded_by", integer(), null=True),
            col("created", floating()),
            col("updated", floating()),
        ], [
            ("ix_learnhub_grade_outbox_due", ["state", "next_attempt"]),
            ("ix_learnhub_grade_outbox_course_id", ["course_id"]),
            ("ix_learnhub_grade_outbox_work", ["username", "course_id", "assignment"]),
        ]),
        ("learnhub_grade_snapshots", [
            col("course_id", string(32), primary_key=True),
            col("student", string(255), primary_key=True),
            col("assignment_id", string(128), primary_key=True),
            col("score", floating()),
            col("max_score", floating()),
            col("needs_manual_grade", integer()),
        ], []),
        ("learnhub_feedback_modes", [
            col("course_id", string(32), primary_key=True),
            col("assignment_id", string(128), primary_key=True),
            col("mode", string(16)),
        ], []),
        ("learnhub_lti13_deployments", [
            col("platform_id", integer(), primary_key=True),
            col("deployment_id", string(255), primary_key=True),
            sa.ForeignKeyConstraint(
                ["platform_id"], ["learnhub_lti13_platforms.id"], ondelete="CASCADE"
            ),
        ], []),
        ("learnhub_lti13_login_states", [
            col("state_hash", string(64), primary_key=True),
            col("platform_id", integer()),
            col("nonce", string(255)),
            col("target_link_uri", text()),
            col("storage_target", string(255), null=True),
            col("expires", floating()),
            sa.ForeignKeyConstraint(
                ["platform_id"], ["learnhub_lti13_platforms.id"], ondelete="CASCADE"
            ),
        ], [("ix_learnhub_lti13_login_states_expires", ["expires"])]),
        ("learnhub_enrollments", [
            col("course_id", string(32), primary_key=True),
            col("username", string(255), primary_key=True),
            col("role", string(32)),
            col("lti_version", string(8)),
            col("platform", string(255)),
            col("launch_enc", text()),
            col("name_enc", text(), null=True),
            col("email_enc", text(), null=True),
            col("first_launch", floating()),
            col("last_launch", floating()),
            sa.ForeignKeyConstraint(["course_id"], ["learnhub_courses.id"], ondelete="CASCADE"),
        ], [
            ("ix_learnhub_enrollments_username", ["username"]),
            ("ix_learnhub_enrollments_last_launch", ["last_launch"]),
        ]),
        ("learnhub_analytics_daily_counts", [
            col("day", string(10), primary_key=True),
            col("metric", string(32), primary_key=True),
            col("key", string(255), primary_key=True),
            col("count", integer()),
        ], []),
        ("learnhub_analytics_active_learners", [
            col("day", string(10), primary_key=True),
            col("digest", string(64), primary_key=True),
        ], []),
    ]  # fmt: skip


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, elements, indexes in _tables():
        if name in existing:
            wanted = {c.name for c in elements if isinstance(c, sa.Column)}
            found = {c["name"] for c in inspector.get_columns(name)}
            if wanted - found:
                raise RuntimeError(
                    f"{name} exists without the columns {sorted(wanted - found)}: it was not "
                    "made by a LearnHub this migration knows"
                )
            continue
        op.create_table(name, *elements)
        for index, columns in indexes:
            op.create_index(index, name, columns)


def downgrade() -> None:
    for name, _elements, _indexes in reversed(_tables()):
        op.drop_table(name)
