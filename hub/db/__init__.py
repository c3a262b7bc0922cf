"""LearnHub's database: one engine per URL and process, one metadata, Alembic migrations."""

from .engine import Base, engine_for
from .migrate import (
    BASELINE,
    VERSION_TABLE,
    SchemaError,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
    upgrade_at_start,
)

__all__ = [
    "BASELINE",
    "VERSION_TABLE",
    "Base",
    "SchemaError",
    "current_revision",
    "engine_for",
    "ensure_schema",
    "head_revision",
    "upgrade",
    "upgrade_at_start",
]
