"""One SQLAlchemy engine per database URL in a process, with SQLite's pragmas set in one place."""

from __future__ import annotations

import threading
import weakref

import sqlalchemy
from sqlalchemy import Engine, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """The declarative base of every LearnHub table: one metadata, described by the migrations
    (learnhub.db.migrations) and compared with them by `alembic check` in the tests."""


# Weak values: an engine lives as long as a Store or Analytics holds it, so every handle of a
# process on one URL shares one pool, and a test's database file is not held open after it.
_ENGINES: weakref.WeakValueDictionary[str, Engine] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """The process's engine for `url`, made on first use."""
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            # Looked up at call time, so a test that refuses create_engine sees this call too.
            engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", sqlite_pragmas)
            _ENGINES[url] = engine
        return engine


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """What every LearnHub connection to SQLite runs first."""
    cursor = dbapi_connection.cursor()
    # Deleted rows are overwritten, so expired secrets and erased people's rows cannot be
    # read back from the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Several processes (hub, services, the command line) share the file.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
