"""Column helpers every table module shares (``models``, ``models_alerts``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL."""
ID_LEN = 64
"""Longest id that people or imports choose (units, households, workers, devices)."""


def json_field(nullable: bool = False, default: Any = None) -> Any:
    if default is None and not nullable:
        raise ValueError("a non-nullable JSON field needs a default")
    return Field(default=default, sa_type=JSON_TYPE, nullable=nullable)
