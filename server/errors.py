"""The one table of errors: a stable machine-readable code, its HTTP status, and how it maps.

Clients branch on ``error.code``; messages are for people. Item-level rejection codes (inside a
push reply, HTTP 200) are listed in ``ITEM_CODES`` and documented in docs/protocol.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Code(StrEnum):
    MALFORMED_BODY = "malformed_body"
    INVALID_REQUEST = "invalid_request"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    TOO_MANY_REQUESTS = "too_many_requests"
    UNAVAILABLE = "service_unavailable"
    UNAUTHORIZED = "unauthorized"
    TOKEN_REVOKED = "token_revoked"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CURSOR_INVALID = "cursor_invalid"
    REBOOTSTRAP = "rebootstrap_required"
    ENROLMENT_INVALID = "enrolment_invalid"
    CONFLICT = "conflict"
    INTERNAL = "internal_error"


STATUS: dict[Code, int] = {
    Code.MALFORMED_BODY: 400,
    Code.INVALID_REQUEST: 422,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.UNSUPPORTED_PROTOCOL: 400,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.REQUEST_TIMEOUT: 408,
    Code.URI_TOO_LONG: 414,
    Code.HEADERS_TOO_LARGE: 431,
    Code.TOO_MANY_REQUESTS: 429,
    Code.UNAVAILABLE: 503,
    Code.UNAUTHORIZED: 401,
    Code.TOKEN_REVOKED: 401,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.CURSOR_INVALID: 400,
    Code.REBOOTSTRAP: 410,
    Code.ENROLMENT_INVALID: 400,
    Code.CONFLICT: 409,
    Code.INTERNAL: 500,
}


class ItemCode(StrEnum):
    """Why one push item was rejected.

    A rejection is final for the app: the item will not be applied as sent, so the app moves it
    out of its outbox (and may show it to the worker). Resent unchanged it is rejected again as
    long as the reference data it names (grids, households, the worker's grids) is unchanged.
    """

    INVALID_ITEM = "invalid_item"
    END_BEFORE_START = "end_before_start"
    INVALID_DURATION = "invalid_duration"
    UNKNOWN_GRID = "unknown_grid"
    FORBIDDEN_GRID = "forbidden_grid"
    FORBIDDEN_WORKER = "forbidden_worker"
    UNKNOWN_HOUSEHOLD = "unknown_household"
    UNKNOWN_CHECKIN = "unknown_checkin"
    INVALID_CLOCK = "invalid_clock"
    CLOCK_AHEAD = "clock_ahead"
    NOTE_MISMATCH = "note_mismatch"
    ID_REUSED = "id_reused"


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "details"}}`` with its status."""

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS[self.code]
