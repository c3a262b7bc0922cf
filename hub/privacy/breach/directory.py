"""The accounts of JupyterHub's database (and NativeAuthenticator's users_info), read only."""

from __future__ import annotations

from pathlib import Path

from jupyterhub import orm
from sqlalchemy import inspect, select

from ...db import engine_for
from .affected import Account, AffectedError


class HubDirectory:
    """Reads accounts from JupyterHub's database (and NativeAuthenticator's users_info)."""

    def __init__(self, url: str):
        self.url = url

    def accounts(self) -> list[Account]:
        if self.url.startswith("sqlite:///"):
            path = self.url.removeprefix("sqlite:///")
            if not Path(path).is_file():
                raise AffectedError(
                    f"no hub database at {path}: run this where the hub keeps its state "
                    "(LEARNHUB_STATE_DIR) or set database.url"
                )
        # The process's engine on the database JupyterHub shares with LearnHub.
        engine = engine_for(self.url)
        tables = set(inspect(engine).get_table_names())
        if "users" not in tables:
            raise AffectedError(f"{self.url} holds no JupyterHub users table: check database.url")
        with engine.connect() as db:
            users = db.execute(
                select(orm.User.name, orm.User.last_activity, orm.User.encrypted_auth_state)
            ).all()
            groups: dict[str, set[str]] = {}
            rows = db.execute(
                select(orm.User.name, orm.Group.name)
                .join(orm.user_group_map, orm.user_group_map.c.user_id == orm.User.id)
                .join(orm.Group, orm.Group.id == orm.user_group_map.c.group_id)
            ).all()
            for user, group in rows:
                groups.setdefault(user, set()).add(group)
            staff: dict[str, str] = {}
            if "users_info" in tables:
                from nativeauthenticator.orm import UserInfo

                for username, email in db.execute(select(UserInfo.username, UserInfo.email)).all():
                    if email:
                        staff[username] = email
        accounts = {
            name: Account(
                username=name,
                groups=frozenset(groups.get(name, ())),
                last_activity=last_activity,
                encrypted_auth_state=state,
                staff_email=staff.get(name),
            )
            for name, last_activity, state in users
        }
        # A direct-login account that signed up but never logged in has no hub user yet.
        for username, email in staff.items():
            accounts.setdefault(username, Account(username=username, staff_email=email))
        return list(accounts.values())
