"""LearnHub's schema migrations: Alembic, with a version table of its own beside JupyterHub's.

When they run (README, "The database"):
- `learnhub upgrade-db`: any database, to the newest revision.
- `learnhub run` and the hub's start: the same on SQLite, the embedded default on one machine;
  on PostgreSQL, which several hubs and services may share, they check and refuse to start
  with a message naming `learnhub upgrade-db`.
- Any other process, the first time it opens a database: a database without LearnHub's
  tables gets them; one made before Alembic (tables, no version table) is taken over by the
  first revision, which keeps its tables and rows and creates those missing; one behind or
  ahead of this code is refused.
"""

from __future__ import annotations

import contextlib
import weakref
from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, column, inspect, select, table, text

from ..settings import SettingsError
from .engine import engine_for

MIGRATIONS = Path(__file__).with_name("migrations")
# JupyterHub's migrations keep theirs in alembic_version, in the same database.
VERSION_TABLE = "learnhub_alembic_version"
# The revision that describes the tables as LearnHub made them before it had migrations.
BASELINE = "0001"


def _learnhub_names(name: str | None, kind: str, _parents) -> bool:
    """What autogenerate compares: LearnHub's tables only, never JupyterHub's beside them."""
    return kind != "table" or (name or "").startswith("learnhub_")


# Every migration context, at run time and in the alembic command (migrations/env.py).
# Batch mode: SQLite alters most columns by rebuilding the table.
CONTEXT_OPTIONS = {
    "version_table": VERSION_TABLE,
    "render_as_batch": True,
    "include_name": _learnhub_names,
}
# The PostgreSQL advisory lock held while LearnHub's migrations run ("learnhub" in ASCII).
POSTGRES_LOCK = 0x6C6561726E687562

# Engines whose schema this process has found at head: checked once, not per Store.
_READY: weakref.WeakSet[Engine] = weakref.WeakSet()


class SchemaError(SettingsError):
    """LearnHub's tables are not at the revision this code needs; the message says what to do."""


@cache
def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    return _script().get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision in LearnHub's version table; None when there is no such table (yet).

    Read directly rather than through a MigrationContext, which logs at every process start.
    """
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.scalar(select(column("version_num")).select_from(table(VERSION_TABLE)))


def _learnhub_tables(connection: Connection) -> set[str]:
    return {
        name
        for name in inspect(connection).get_table_names()
        if name.startswith("learnhub_") and name != VERSION_TABLE
    }


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@contextlib.contextmanager
def _migrating(engine: Engine):
    """A connection in a transaction that holds the database's write lock: processes that
    start at once migrate one after the other, the later ones finding nothing to do, and a
    migration that fails leaves the schema as it was."""
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection, connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK}
                )
            yield connection
        return
    # SQLite's procedure for schema changes (sqlite.org/lang_altertable.html): foreign keys off
    # outside the transaction, so dropping a table that batch mode rebuilds cascades nothing,
    # and checked before the commit. The driver begins no transaction of its own (AUTOCOMMIT);
    # BEGIN IMMEDIATE takes the write lock at once, DDL included.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise SchemaError(f"a migration broke foreign keys: {broken[:5]}")
                connection.exec_driver_sql("COMMIT")
            except BaseException:
                if connection.connection.driver_connection.in_transaction:
                    connection.exec_driver_sql("ROLLBACK")
                raise
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _run(connection: Connection, destination: str) -> None:
    script = _script()

    def steps(revision, _context):
        return script._upgrade_revs(destination, revision)

    with EnvironmentContext(_config(), script, fn=steps) as environment:
        # One transaction on every dialect: _migrating began it (SQLite's DDL is transactional).
        environment.configure(connection=connection, transactional_ddl=True, **CONTEXT_OPTIONS)
        environment.run_migrations()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring LearnHub's tables to the newest revision; (revision before, revision after).

    Before is None for a database without a version table: a new one, or one made before
    Alembic, which the first revision takes over with its rows.
    """
    with _migrating(engine) as connection:
        before = current_revision(connection)
        _check_known(engine, before)
        _run(connection, "head")
        after = current_revision(connection)
    _READY.add(engine)
    return before, after


def _take_over(engine: Engine) -> str:
    """A new database's tables at head, or a database made before Alembic at the baseline;
    the revision it is at (a process that started at the same time may have done it)."""
    with _migrating(engine) as connection:
        revision = current_revision(connection)
        if revision is None:
            _run(connection, BASELINE if _learnhub_tables(connection) else "head")
            revision = current_revision(connection)
    return revision


def _check_known(engine: Engine, revision: str | None) -> None:
    if revision is None:
        return
    try:
        _script().get_revision(revision)
    except CommandError:
        raise SchemaError(
            f"LearnHub's tables in {_where(engine)} are at revision {revision!r}, which this "
            "LearnHub does not know: a newer LearnHub upgraded them. Run that version, or "
            "restore the database from before the upgrade"
        ) from None


def ensure_schema(engine: Engine, *, upgrade_existing: bool = False) -> None:
    """Make sure LearnHub's tables are at head before this process uses them (see the module
    docstring): new or pre-Alembic databases are taken over, older revisions are upgraded
    only with `upgrade_existing`, else refused with a SchemaError that says what to run."""
    if engine in _READY:
        return
    with engine.connect() as connection:
        revision = current_revision(connection)
    if revision is None:
        revision = _take_over(engine)
    head = head_revision()
    if revision != head:
        _check_known(engine, revision)
        if not upgrade_existing:
            raise SchemaError(
                f"LearnHub's tables in {_where(engine)} are at revision {revision}; this "
                f"LearnHub needs {head}. Run `learnhub upgrade-db` (the hub upgrades SQLite by "
                "itself when it starts, PostgreSQL only with that command)"
            )
        upgrade(engine)
    _READY.add(engine)


def upgrade_at_start(url: str) -> None:
    """What `learnhub run` and the hub's start do: upgrade SQLite, the embedded default on one
    machine; check PostgreSQL, shared by hubs and services that may still run older code,
    whose upgrade is the operator's `learnhub upgrade-db`."""
    engine = engine_for(url)
    ensure_schema(engine, upgrade_existing=engine.dialect.name == "sqlite")
