"""Error bodies. Clients branch on ``code``; ``message`` is for people and may change."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorBody(msgspec.Struct, kw_only=True):
    error: ErrorDetail
