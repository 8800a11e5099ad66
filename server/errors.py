"""The one table of errors: a stable machine-readable code, its HTTP status, and how it maps.

Clients branch on ``error.code``; messages are for people. The codes themselves are wire types
(``schemas/errors.py``: ``ErrorCode``, and ``ItemCode`` for the item rejections inside a push
reply, HTTP 200), so the OpenAPI document lists them as enums; docs/protocol.md explains each.
"""

from __future__ import annotations

from typing import Any

from schemas.errors import ErrorCode, ItemCode

Code = ErrorCode
"""The request-level codes by their short name (the wire type is ``schemas.errors.ErrorCode``)."""

__all__ = ["STATUS", "ApiError", "Code", "ErrorCode", "ItemCode"]


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
    Code.WAIT_INVALID: 400,
    Code.REBOOTSTRAP: 410,
    Code.ENROLMENT_INVALID: 400,
    Code.CONFLICT: 409,
    Code.INTERNAL: 500,
}


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
