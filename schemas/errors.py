"""Error bodies. Clients branch on ``code``; ``message`` is for people and may change."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class ErrorCode(StrEnum):
    """Why a request was refused (``error.code``): stable, clients branch on it."""

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
    WAIT_INVALID = "wait_invalid"
    REBOOTSTRAP = "rebootstrap_required"
    ENROLMENT_INVALID = "enrolment_invalid"
    CONFLICT = "conflict"
    INTERNAL = "internal_error"


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


class ErrorDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: ErrorCode
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorBody(msgspec.Struct, kw_only=True):
    error: ErrorDetail
