"""Leased rows: the one way a worker takes a row of work (a grading job, a grade to send).

A row is taken by one UPDATE whose WHERE says it is still free and whose row count says
who won: two workers, in one process or on two machines sharing the database, never both
hold it. The lease runs out at `lease_until`; a worker that dies leaves the row to be taken
again after that, and nothing waits for it to come back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update


def lapsed(model, now: float):
    """The row's lease is free: never taken, or run out by `now`."""
    return model.lease_until.is_(None) | (model.lease_until < now)


def take_lease(
    session, model, row_id: int, *, free, until: float, values: dict[str, Any] | None = None
) -> bool:
    """Lease row `row_id` of `model` until `until` if `free` (a condition) still holds,
    setting `values` with it; whether this caller got it. Commits."""
    taken = session.execute(
        update(model)
        .where(model.id == row_id, free)
        .values(lease_until=until, **(values or {}))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return taken == 1
