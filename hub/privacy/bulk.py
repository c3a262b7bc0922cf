"""Deleting many hub users at once, inside the hub: what a sweep that expires thousands needs.

JupyterHub's DELETE /hub/api/users/:name does, per user, a lookup, the spawner's
delete_forever, the authenticator's delete_user and an ORM delete whose cascades load every
related row: about ten users a second, so expiring 10,000 learners took minutes. This
endpoint has the same effect for a batch of users whose servers are stopped, in a few
statements: the database's own ON DELETE CASCADE (JupyterHub declares it on every table that
refers to a user) removes tokens, OAuth codes, spawners, shares and role and group
memberships. Users with a server running, starting or stopping are left to the one-by-one
REST call, which stops the server first.

The cascades look children up by their foreign key; JupyterHub indexes few of those columns,
so without `ensure_foreign_key_indexes` each deleted user costs a scan of api_tokens and
spawners.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.auth import Authenticator
from jupyterhub.scopes import needs_scope
from jupyterhub.spawner import Spawner
from sqlalchemy import delete, inspect, select, text
from tornado import web

from ..request_body import LimitedBody
from ..upstream import spawner_busy, users_deleted

log = logging.getLogger(__name__)

# POST /hub/api/learnhub/users/erase
ERASE_USERS_PATH = "api/learnhub/users/erase"
# Users per call: one call holds the hub's event loop and the database's write lock, so it
# must stay short (a few tens of milliseconds) for launches to go on meanwhile.
MAX_USERS_PER_CALL = 500

# Columns that refer to users, spawners or OAuth clients, which JupyterHub does not index:
# the database looks them up for every deleted parent row (ON DELETE CASCADE / SET NULL).
FOREIGN_KEY_INDEXES = (
    ("api_tokens", "user_id"),
    ("api_tokens", "client_id"),
    ("spawners", "user_id"),
    ("spawners", "server_id"),
    ("spawners", "oauth_client_id"),
    ("oauth_codes", "user_id"),
    ("oauth_codes", "client_id"),
    ("shares", "user_id"),
    ("shares", "owner_id"),
    ("shares", "spawner_id"),
    ("share_codes", "owner_id"),
    ("share_codes", "spawner_id"),
    ("user_group_map", "group_id"),
    ("user_role_map", "role_id"),
)


def ensure_foreign_key_indexes(connection) -> list[str]:
    """Index JupyterHub's foreign-key columns that lack one; the names of those created.

    Runs in the caller's transaction (the hub's own session: a second SQLite connection
    would wait for its lock). Idempotent, and harmless to JupyterHub's migrations (extra
    indexes with names of our own). One on a table of 100,000 rows takes well under a second.
    """
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    created = []
    for table, column in FOREIGN_KEY_INDEXES:
        if table not in tables or column not in {c["name"] for c in inspector.get_columns(table)}:
            continue
        primary = inspector.get_pk_constraint(table).get("constrained_columns") or []
        leading = {tuple(i["column_names"][:1]) for i in inspector.get_indexes(table)}
        if (column,) in leading or primary[:1] == [column]:
            continue
        name = f"learnhub_ix_{table}_{column}"
        connection.execute(text(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")'))
        created.append(name)
    if created:
        log.info("indexed %d foreign-key columns of JupyterHub's tables", len(created))
    return created


def _overrides(cls: type, base: type, method: str) -> bool:
    """Whether `cls` has a `method` of its own (not `base`'s)."""
    return getattr(cls, method) is not getattr(base, method)


class EraseUsersHandler(LimitedBody, APIHandler):
    """POST /hub/api/learnhub/users/erase {"users": [name, ...]}: delete these users.

    Needs `delete:users` on every user (the retention service holds it through admin:users).
    Answers {"deleted": [...], "busy": [...], "failed": [...], "missing": [...]}: "busy"
    users have a server running, starting or stopping, and were not touched (DELETE
    /hub/api/users/:name stops and deletes them one at a time); "failed" users' persistent
    resources (a home volume) could not be removed, and they are kept for the next try.
    """

    indexed = False  # ensure_foreign_key_indexes ran in this hub process

    @needs_scope("delete:users")
    async def post(self):
        names = self._names(self.get_json_body())
        if not EraseUsersHandler.indexed:
            ensure_foreign_key_indexes(self.db.connection())
            self.db.commit()
            EraseUsersHandler.indexed = True
        found = self.db.execute(select(orm.User).where(orm.User.name.in_(names))).scalars().all()
        running = self._running({user.id for user in found})
        busy = [user for user in found if user.id in running or self._busy(user)]
        doomed = [user for user in found if user not in busy]
        failed: set[str] = set()
        if doomed:
            failed = await self._delete_forever(doomed)
            doomed = [user for user in doomed if user.name not in failed]
        if doomed:
            await self._forget(doomed)
            self._delete_rows(doomed)
        missing = set(names) - {user.name for user in found}
        self.log.info(
            "bulk erasure: %d users deleted, %d busy, %d failed, %d missing",
            len(doomed),
            len(busy),
            len(failed),
            len(missing),
        )
        self.write(
            {
                "deleted": sorted(user.name for user in doomed),
                "busy": sorted(user.name for user in busy),
                "failed": sorted(failed),
                "missing": sorted(missing),
            }
        )

    def _names(self, body: Any) -> list[str]:
        users = body.get("users") if isinstance(body, dict) else None
        if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
            raise web.HTTPError(400, 'the body must be {"users": [username, ...]}')
        if len(users) > MAX_USERS_PER_CALL:
            raise web.HTTPError(
                400, f"at most {MAX_USERS_PER_CALL} users per call, not {len(users)}"
            )
        if self.current_user.name in users:
            raise web.HTTPError(400, "Cannot delete yourself!")
        return list(dict.fromkeys(users))

    def _running(self, ids: Collection[int]) -> set[int]:
        """Users whose server the database records as running or starting (one query)."""
        if not ids:
            return set()
        return set(
            self.db.execute(
                select(orm.Spawner.user_id).where(
                    orm.Spawner.user_id.in_(ids), orm.Spawner.server_id.is_not(None)
                )
            ).scalars()
        )

    def _busy(self, orm_user: orm.User) -> bool:
        """A server starting or stopping by the hub's memory (the database says "running"
        only once a spawn has gone far enough)."""
        if not dict.__contains__(self.users, orm_user.id):
            return False  # never loaded since the hub started: nothing of it runs
        return any(spawner_busy(s) for s in self.users[orm_user].spawners.values())

    async def _delete_forever(self, doomed: Sequence[orm.User]) -> set[str]:
        """The spawner's persistent resources (a Docker home volume): in one call per batch
        when the spawner offers `delete_forever_many`, else per spawner. Returns the users
        whose resources could not be removed: they are kept, for the next try."""
        spawner_class = self.settings["spawner_class"]
        if not _overrides(spawner_class, Spawner, "delete_forever"):
            return set()  # the base no-op (local processes): nothing to instantiate
        if hasattr(spawner_class, "delete_forever_many"):
            spawner = self.users[doomed[0]].spawner
            return set(await spawner.delete_forever_many([u.name for u in doomed]))
        for orm_user in doomed:
            # JupyterHub's own path: it logs a failure and deletes the user anyway.
            await self.users[orm_user].delete_spawners()
        return set()

    async def _forget(self, doomed: Sequence[orm.User]) -> None:
        """The authenticator's delete_user hook (NativeAuthenticator keeps a row per user)."""
        authenticator = self.authenticator
        many = getattr(authenticator, "delete_users", None)
        if many is not None:
            await many([u.name for u in doomed])
        elif _overrides(type(authenticator), Authenticator, "delete_user"):
            for orm_user in doomed:
                result = authenticator.delete_user(self.users[orm_user])
                if hasattr(result, "__await__"):
                    await result
        else:
            for orm_user in doomed:
                authenticator.allowed_users.discard(orm_user.name)

    def _delete_rows(self, doomed: Collection[orm.User]) -> None:
        """Servers and OAuth clients of the users' spawners (the ORM cascades those from a
        spawner, the database does not), then the users; the rest cascades."""
        ids = [u.id for u in doomed]
        spawners = self.db.execute(
            select(orm.Spawner.server_id, orm.Spawner.oauth_client_id).where(
                orm.Spawner.user_id.in_(ids)
            )
        ).all()
        servers = [server for server, _ in spawners if server is not None]
        clients = [client for _, client in spawners if client is not None]
        # The hub's in-memory users first: their ORM objects are about to be gone.
        for user_id in ids:
            if dict.__contains__(self.users, user_id):
                del self.users[user_id]
        for orm_user in doomed:
            if orm_user in self.db:
                self.db.expunge(orm_user)
        options = {"synchronize_session": False}
        if clients:
            self.db.execute(
                delete(orm.OAuthClient).where(orm.OAuthClient.identifier.in_(clients)),
                execution_options=options,
            )
        if servers:
            self.db.execute(
                delete(orm.Server).where(orm.Server.id.in_(servers)), execution_options=options
            )
        self.db.execute(delete(orm.User).where(orm.User.id.in_(ids)), execution_options=options)
        self.db.commit()
        users_deleted(len(ids))


def bulk_handlers() -> list[tuple]:
    """Handlers under the hub's prefix (/hub/), for the authenticator's get_handlers."""
    return [(rf"/{ERASE_USERS_PATH}", EraseUsersHandler)]
