"""Affected people's addresses: their auth state decrypted, the address checked."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from typing import Any

from jupyterhub.crypto import CryptKeeper, InvalidToken
from traitlets.config import Config

from ...keys import auth_state_key
from .affected import Account


@dataclass(frozen=True)
class Recipient:
    """An affected person: their address and name when known, or why there is none."""

    username: str
    email: str | None = field(default=None, repr=False)
    name: str | None = field(default=None, repr=False)
    missing: str | None = None  # why there is no usable address


NO_ADDRESS = "no email address on record"
UNREADABLE = "auth state could not be decrypted"


def usable_address(value: Any) -> str | None:
    """The address if it can be written into a To header as it is, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+", value):
        return None
    try:
        Address(addr_spec=value)
    except (ValueError, IndexError):
        return None
    return value


def recipient_from(account: Account, auth_state: Mapping | None) -> Recipient:
    """Prefer the address the LMS sent (auth state); fall back to a staff account's email."""
    auth_state = auth_state or {}
    name = auth_state.get("name") if isinstance(auth_state.get("name"), str) else None
    raw = auth_state.get("email") or account.staff_email
    if not raw:
        return Recipient(account.username, name=name, missing=NO_ADDRESS)
    email = usable_address(raw)
    if email is None:
        return Recipient(account.username, name=name, missing="the address on record is invalid")
    return Recipient(account.username, email=email, name=name)


async def resolve_recipients(accounts: Iterable[Account], crypt_key: bytes) -> list[Recipient]:
    """Decrypt the auth state of the selected accounts only, and read name and email."""
    keeper = CryptKeeper(config=Config(), keys=[auth_state_key(crypt_key)])
    recipients = []
    try:
        for account in accounts:
            if account.encrypted_auth_state is None:
                recipients.append(recipient_from(account, None))
                continue
            try:
                state = await keeper.decrypt(account.encrypted_auth_state)
            except (InvalidToken, ValueError):
                if account.staff_email:
                    recipients.append(recipient_from(account, None))
                else:
                    recipients.append(Recipient(account.username, missing=UNREADABLE))
                continue
            recipients.append(recipient_from(account, state if isinstance(state, dict) else None))
    finally:
        keeper.executor.shutdown(wait=True)
    return recipients
