"""`learnhub upgrade-db` on a database made before LearnHub had migrations: every row kept.

The database is this repository's tables as create_all made them up to commit 68c73f1
(tests/fixtures/pre_alembic, made by its make_fixture.py with that commit's code), with rows
in every learnhub_* table, beside JupyterHub's own tables and alembic_version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from jupyterhub import orm as hub_orm
from sqlalchemy import Integer, MetaData, create_engine, insert, inspect, select, text

from learnhub.db import VERSION_TABLE, head_revision
from learnhub.db.migrate import CONTEXT_OPTIONS
from learnhub.db.models import metadata
from learnhub.store import Store

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre_alembic"
ROWS = json.loads((FIXTURE / "rows.json").read_text())
# The crypt key make_fixture.py stored the secrets with.
FIXTURE_CRYPT_KEY = bytes(range(32))
LEARNHUB = str(Path(sys.executable).with_name("learnhub"))
# Columns later revisions added, and what the fixture's rows hold in them after the upgrade.
ADDED_SINCE = {"learnhub_grade_outbox": {"destination": None}}  # 0002
# Tables later revisions created, empty after the upgrade.
TABLES_ADDED_SINCE = {"learnhub_lti13_registration_keys", "learnhub_spent_values"}  # 0003, 0004


def make_pre_alembic_database(url: str) -> str:
    """JupyterHub's tables (stamped by JupyterHub), then LearnHub's as create_all made them
    before Alembic, with the fixture's rows; returns JupyterHub's alembic revision."""
    hub_orm.new_session_factory(url)().close()
    engine = create_engine(url)
    dialect = engine.dialect.name
    with engine.begin() as connection:
        for statement in (FIXTURE / f"schema.{dialect}.sql").read_text().split(";\n"):
            if statement.strip():
                connection.exec_driver_sql(statement)
        tables = MetaData()
        tables.reflect(connection, only=list(ROWS))
        for table in tables.sorted_tables:  # parents before children
            name = table.name
            connection.execute(insert(table), ROWS[name])
            id_column = table.c.get("id")
            if dialect == "postgresql" and isinstance(getattr(id_column, "type", None), Integer):
                # As the rows' own inserts would have left the sequence.
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                connection.execute(text(f"SELECT setval({sequence}, max(id)) FROM {name}"))  # noqa: S608
        hub_revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return hub_revision


def table_rows(url: str) -> dict[str, list[dict]]:
    engine = create_engine(url)
    found = {}
    with engine.connect() as connection:
        tables = MetaData()
        tables.reflect(connection, only=list(ROWS))
        for name in ROWS:
            table = tables.tables[name]
            query = select(table).order_by(*table.primary_key.columns)
            found[name] = [dict(row._mapping) for row in connection.execute(query)]
    engine.dispose()
    return found


def assert_migrated_intact(url: str, hub_revision: str) -> None:
    """Every fixture row as it was, LearnHub's version at head, JupyterHub's untouched, the
    schema the models describe, and the rows readable through the Store."""
    assert table_rows(url) == {
        name: [{**row, **ADDED_SINCE.get(name, {})} for row in rows] for name, rows in ROWS.items()
    }
    engine = create_engine(url)
    with engine.connect() as connection:
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()  # noqa: S608
        assert versions == [(head_revision(),)]
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (hub_revision,)
        ]
        context = MigrationContext.configure(
            connection, opts={**CONTEXT_OPTIONS, "target_metadata": metadata}
        )
        assert compare_metadata(context, metadata) == []
        assert {t for t in inspect(connection).get_table_names() if t.startswith("learnhub_")} == {
            *ROWS,
            *TABLES_ADDED_SINCE,
            VERSION_TABLE,
        }
    engine.dispose()
    store = Store(url, FIXTURE_CRYPT_KEY)
    assert store.get_consumer("canvas-key").secret == "canvas-secret"
    assert [e.email for e in store.enrollments_in("c0ffee")] == ["a@example.edu", None]
    assert store.list_platforms()[0].deployment_ids == ["dep-1", "dep-2"]


def upgrade_db(state: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "LEARNHUB_STATE_DIR": str(state), **(env or {})}
    environ.pop("LEARNHUB_CONFIG", None)
    return subprocess.run(
        [LEARNHUB, "upgrade-db"], env=environ, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_upgrade_db_keeps_every_row_of_a_database_made_before_migrations(tmp_path):
    url = f"sqlite:///{tmp_path / 'learnhub.sqlite'}"
    hub_revision = make_pre_alembic_database(url)
    assert VERSION_TABLE not in inspect(create_engine(url)).get_table_names()

    done = upgrade_db(tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"taken over by revision 0001 with its rows); now at revision {head_revision()}" in (
        done.stdout
    )
    assert_migrated_intact(url, hub_revision)

    again = upgrade_db(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "the newest: nothing to do" in again.stdout
    assert table_rows(url) == {
        name: [{**row, **ADDED_SINCE.get(name, {})} for row in rows] for name, rows in ROWS.items()
    }


def test_upgrade_db_without_a_state_directory_says_what_to_run(tmp_path):
    missing = tmp_path / "nowhere"
    refused = upgrade_db(missing)
    assert refused.returncode == 2
    assert "learnhub init" in refused.stderr and "Traceback" not in refused.stderr
    assert not missing.exists()


def test_upgrade_db_is_listed_in_learnhub_help():
    shown = subprocess.run(
        [LEARNHUB, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0
    assert "upgrade-db" in shown.stdout
