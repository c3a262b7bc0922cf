"""`learnhub upgrade-db`: LearnHub's tables to the schema this version needs (Alembic)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from ..db import BASELINE, engine_for, head_revision, upgrade
from ..settings import Settings, SettingsError


def cmd_upgrade_db(settings: Settings, args) -> int:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        folder = Path(url.database).parent
        if not folder.is_dir():
            # SQLite would make the file; the state directory is made by init and run only.
            raise SettingsError(
                f"{folder} does not exist: no database to upgrade there. Run `learnhub init` "
                "(or `learnhub run`) to make the state directory, or set LEARNHUB_STATE_DIR "
                "or database.url to the existing one"
            )
    engine = engine_for(settings.database_url)
    where = url.render_as_string(hide_password=True)
    before, after = upgrade(engine)
    if before == after:
        print(f"LearnHub's tables in {where} are at revision {after}, the newest: nothing to do.")
    elif before is None:
        print(
            f"LearnHub's tables in {where} had no version (a new database, or one made before "
            f"LearnHub's migrations, taken over by revision {BASELINE} with its rows); "
            f"now at revision {after}."
        )
    else:
        print(f"Upgraded LearnHub's tables in {where} from revision {before} to {after}.")
    return 0


def add_commands(subparsers) -> None:
    """Add `upgrade-db` to the `learnhub` command's subparsers."""
    p = subparsers.add_parser(
        "upgrade-db",
        help="migrate LearnHub's tables to this version's schema (PostgreSQL needs it after "
        "an upgrade; the hub does it for SQLite)",
        description="Apply LearnHub's Alembic migrations to database.url, up to revision "
        f"{head_revision()}, in one transaction. A database made before LearnHub had "
        "migrations keeps its tables and rows. LearnHub's version is kept in "
        "learnhub_alembic_version; JupyterHub's tables and its alembic_version are not "
        "touched (JupyterHub has its own `jupyterhub upgrade-db`). The hub upgrades an SQLite "
        "database by itself when it starts; on PostgreSQL it refuses to start until this is run.",
    )
    p.set_defaults(func=cmd_upgrade_db)
