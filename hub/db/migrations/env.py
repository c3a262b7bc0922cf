"""The alembic command's environment, for writing and checking a revision; LearnHub itself
runs migrations through learnhub.db.migrate, which does not read this file.

    alembic -c hub/db/migrations/alembic.ini revision --autogenerate --rev-id 0002 -m "..."
    alembic -c hub/db/migrations/alembic.ini check

on the database of the settings (learnhub.yaml, $LEARNHUB_CONFIG), or -x url=... for another.
Upgrade with `learnhub upgrade-db`, not `alembic upgrade`: only the former takes the lock and,
on SQLite, turns foreign keys off while tables are rebuilt.
"""

from alembic import context

from learnhub.db.engine import engine_for
from learnhub.db.migrate import CONTEXT_OPTIONS
from learnhub.db.models import metadata
from learnhub.settings import load_settings

url = context.get_x_argument(as_dictionary=True).get("url") or load_settings().database_url

if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True, **CONTEXT_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()
else:
    with engine_for(url).connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, **CONTEXT_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
