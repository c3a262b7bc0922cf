"""learnhub.db: one engine per URL, SQLite's pragmas, and when migrations run (SQLite files)."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text

from learnhub.db import (
    VERSION_TABLE,
    SchemaError,
    engine_for,
    ensure_schema,
    head_revision,
    migrate,
    upgrade,
    upgrade_at_start,
)
from learnhub.db.models import metadata
from learnhub.privacy.analytics import Analytics
from learnhub.store import Store

KEY = b"k" * 32
# The newest real revision, and a test revision after it (the `next_revision` fixture).
HEAD = head_revision()
NEXT = "0900"
SECOND = '''
"""A test revision: a column on learnhub_courses (SQLite rebuilds the table), a new table."""
import sqlalchemy as sa
from alembic import op

revision = "NEXT"
down_revision = "HEAD"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("learnhub_courses", recreate="always") as batch:
        batch.add_column(sa.Column("term", sa.String(32), nullable=True))
    op.create_table("learnhub_probe", sa.Column("id", sa.Integer, primary_key=True))
    FAIL


def downgrade():
    pass
'''


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'learnhub.sqlite'}"


def version_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()  # noqa: S608


def test_one_engine_per_url_for_every_handle_with_the_pragmas(url, tmp_path):
    store = Store(url, KEY)
    analytics = Analytics(url, KEY)
    assert analytics.engine is store.engine is engine_for(url)
    assert engine_for(f"sqlite:///{tmp_path / 'other.sqlite'}") is not store.engine
    with store.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("secure_delete", "foreign_keys", "busy_timeout")
        }
    # foreign_keys was off on the analytics engine before there was one engine.
    assert pragmas == {"secure_delete": 1, "foreign_keys": 1, "busy_timeout": 5000}


def test_a_new_database_gets_every_table_at_head_in_its_own_version_table(url, tmp_path):
    Store(url, KEY)
    tables = set(inspect(engine_for(url)).get_table_names())
    assert tables == {*metadata.tables, VERSION_TABLE}
    assert "alembic_version" not in tables  # JupyterHub's, not ours
    assert version_rows(tmp_path / "learnhub.sqlite") == [(head_revision(),)]


def test_the_migrations_describe_the_models_alembic_check(url):
    """`alembic check` through migrations/env.py: a model changed without a revision fails."""
    Store(url, KEY)
    config = Config(
        str(migrate.MIGRATIONS / "alembic.ini"), cmd_opts=argparse.Namespace(x=[f"url={url}"])
    )
    command.check(config)
    column = metadata.tables["learnhub_courses"].c.title
    column.nullable = True
    try:
        with pytest.raises(CommandError, match="New upgrade operations detected"):
            command.check(config)
    finally:
        column.nullable = False


def test_a_database_made_before_migrations_missing_tables_keeps_rows_and_gains_tables(
    url, tmp_path
):
    """As a hub whose grading service never ran left it: some tables, no version table."""
    path = tmp_path / "learnhub.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE learnhub_lti11_consumers (key VARCHAR(255) NOT NULL, secret_enc TEXT "
            "NOT NULL, frame_origin VARCHAR(255), created FLOAT NOT NULL, PRIMARY KEY (key))"
        )
        db.execute("INSERT INTO learnhub_lti11_consumers VALUES ('k', 'x', NULL, 1.5)")
    # The baseline takes it over; then it is behind like any database at 0001.
    with pytest.raises(SchemaError, match=rf"at revision 0001; this LearnHub needs {HEAD}\."):
        Store(url, KEY)
    assert version_rows(path) == [("0001",)]
    upgrade_at_start(url)
    Store(url, KEY)
    assert set(inspect(engine_for(url)).get_table_names()) == {*metadata.tables, VERSION_TABLE}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM learnhub_lti11_consumers").fetchall() == [
            ("k", "x", None, 1.5)
        ]
    assert version_rows(path) == [(HEAD,)]


def test_a_table_not_made_by_learnhub_is_refused_not_adopted(url, tmp_path):
    with sqlite3.connect(tmp_path / "learnhub.sqlite") as db:
        db.execute("CREATE TABLE learnhub_courses (id VARCHAR(32) PRIMARY KEY)")
    with pytest.raises(RuntimeError, match=r"learnhub_courses exists without the columns"):
        Store(url, KEY)
    assert VERSION_TABLE not in inspect(engine_for(url)).get_table_names()


@pytest.fixture
def second_revision(tmp_path, monkeypatch):
    """The real migrations plus a revision NEXT after them; `fails` makes it raise after its
    DDL."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, scripts)

    def write(fails: bool) -> None:
        source = (
            textwrap.dedent(SECOND)
            .replace("    FAIL\n", "    raise RuntimeError('no')\n" if fails else "")
            .replace('"NEXT"', repr(NEXT))
            .replace('"HEAD"', repr(HEAD))
        )
        (scripts / "versions" / f"{NEXT}_test.py").write_text(source)

    config = Config()
    config.set_main_option("script_location", str(scripts))
    monkeypatch.setattr(migrate, "_config", lambda: config)
    monkeypatch.setattr(migrate, "_script", lambda: ScriptDirectory.from_config(config))
    write(fails=False)
    return write


def at_first_revision(url: str, monkeypatch) -> Store:
    """A database at the newest real revision with a course and an enrollment (which cascade
    on course deletes), behind NEXT."""
    with monkeypatch.context() as m:
        m.setattr(migrate, "head_revision", lambda: HEAD)
        m.setattr(migrate, "_run", lambda c, d, run=migrate._run: run(c, HEAD))
        store = Store(url, KEY)
    store.record_launch(
        username="learner", course_id="c1", platform="p", context_id="ctx", title="Course",
        role="learner", lti_version="1.3", launch={}, name=None, email=None, now=1.0,
    )  # fmt: skip
    migrate._READY.discard(store.engine)
    return store


def test_a_database_behind_head_is_refused_by_other_processes(
    url, tmp_path, second_revision, monkeypatch
):
    at_first_revision(url, monkeypatch)
    with pytest.raises(
        SchemaError,
        match=rf"at revision {HEAD}; this LearnHub needs {NEXT}\. Run `learnhub upgrade-db`",
    ):
        Store(url, KEY)
    assert version_rows(tmp_path / "learnhub.sqlite") == [(HEAD,)]


def test_upgrade_at_start_upgrades_sqlite_and_keeps_rows_of_rebuilt_tables(
    url, tmp_path, second_revision, monkeypatch
):
    """learnhub_courses is rebuilt with foreign keys off: its enrollments do not cascade away."""
    at_first_revision(url, monkeypatch)
    upgrade_at_start(url)
    path = tmp_path / "learnhub.sqlite"
    assert version_rows(path) == [(NEXT,)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id, title, term FROM learnhub_courses").fetchall() == [
            ("c1", "Course", None)
        ]
        assert db.execute("SELECT course_id, username FROM learnhub_enrollments").fetchall() == [
            ("c1", "learner")
        ]
    with engine_for(url).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_failed_migration_leaves_the_schema_as_it_was(
    url, tmp_path, second_revision, monkeypatch
):
    at_first_revision(url, monkeypatch)
    second_revision(fails=True)
    with pytest.raises(RuntimeError, match="no"):
        upgrade(engine_for(url))
    path = tmp_path / "learnhub.sqlite"
    assert version_rows(path) == [(HEAD,)]
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(learnhub_courses)")]
        assert "term" not in columns
        assert db.execute("SELECT count(*) FROM learnhub_enrollments").fetchone() == (1,)
    assert "learnhub_probe" not in inspect(engine_for(url)).get_table_names()


def test_a_revision_this_code_does_not_know_is_refused(url, tmp_path):
    Store(url, KEY)
    with sqlite3.connect(tmp_path / "learnhub.sqlite") as db:
        db.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")  # noqa: S608
    migrate._READY.clear()
    with pytest.raises(SchemaError, match="'9999', which this LearnHub does not know"):
        upgrade_at_start(url)
    with pytest.raises(SchemaError, match="does not know"):
        upgrade(engine_for(url))


def test_upgrade_of_a_database_at_head_changes_nothing(url):
    engine = engine_for(url)
    assert upgrade(engine) == (None, head_revision())
    assert upgrade(engine) == (head_revision(), head_revision())
    ensure_schema(engine)
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1  # noqa: S608
