"""Content negotiation: JSON or MessagePack in, the client's preference out. Codecs built once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response

from schemas.errors import ErrorBody, ErrorDetail
from schemas.sync import MAX_NESTING
from server.errors import ApiError, Code

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_TYPES = {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
MEDIA_TYPES = [JSON, MSGPACK]

T = TypeVar("T")

_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()
_decoders: dict[tuple[type[Any], bool], Any] = {}


def _decoder(kind: type[T], msgpack: bool) -> Any:
    key = (kind, msgpack)
    if key not in _decoders:
        module = msgspec.msgpack if msgpack else msgspec.json
        _decoders[key] = module.Decoder(kind)
    return _decoders[key]


def is_msgpack(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    if base in _MSGPACK_TYPES:
        return True
    if base in {JSON, ""}:
        return False
    raise ApiError(
        Code.UNSUPPORTED_MEDIA_TYPE,
        f"unsupported content type {base!r}",
        details={"supported": MEDIA_TYPES},
    )


TOO_DEEP = f"arrays and maps nest too deep (at most {MAX_NESTING} levels)"


def decode(body: bytes, kind: type[T], *, msgpack: bool) -> T:
    """Decode a whole body; malformed bytes → 400 malformed_body, wrong shape → 422.

    Nesting deeper than the decoder can descend (the interpreter's recursion limit, far above
    ``MAX_NESTING``) is malformed too: such a body cannot be parsed, wherever the nesting is.
    """
    try:
        return _decoder(kind, msgpack).decode(body)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise ApiError(Code.INVALID_REQUEST, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(Code.MALFORMED_BODY, f"cannot decode body: {exc}") from None
    except RecursionError:
        raise ApiError(
            Code.MALFORMED_BODY,
            f"cannot decode body: {TOO_DEEP}",
            details={"max_nesting": MAX_NESTING},
        ) from None


SMALL_BODY_BYTES = 256 * 1024
"""The largest body of an endpoint other than push (a comment, a webhook, unit settings)."""


async def receive(
    request: Request[Any, Any, Any],
    *,
    limit: int,
    timeout_s: float,
    limit_key: str = "max_body_bytes",
) -> bytes:
    """The whole body: at most ``limit`` bytes (413, ``details[limit_key]``), arrived within
    ``timeout_s`` (408, and the connection is closed: the rest of a late body is never read).
    A slow sender costs its own connection only."""
    too_large = ApiError(
        Code.PAYLOAD_TOO_LARGE,
        f"request bodies here are limited to {limit} bytes",
        details={limit_key: limit},
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            Code.REQUEST_TIMEOUT,
            f"the request body did not arrive within {timeout_s:g} s; resend it",
            details={"body_timeout_s": timeout_s, "received_bytes": size},
            headers={"Connection": "close"},
        ) from None
    return b"".join(chunks)


async def read_body(request: Request[Any, Any, Any], kind: type[T], *, timeout_s: float) -> T:
    """The whole (small) request body, received as :func:`receive` does and decoded by its
    content type."""
    msgpack = is_msgpack(request.headers.get("content-type", ""))
    body = await receive(request, limit=SMALL_BODY_BYTES, timeout_s=timeout_s)
    return decode(body, kind, msgpack=msgpack)


def item_decoder(kind: Any, *, msgpack: bool) -> Any:
    """A decoder for single items (look it up once per request, not per item)."""
    return _decoder(kind, msgpack)


def wants_msgpack(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return any(t in accept for t in _MSGPACK_TYPES)


CSV = "text/csv"


def wants_csv(request: Request[Any, Any, Any], fmt: str | None) -> bool:
    """A CSV reply: ``format=csv``, or no ``format`` and an Accept header naming ``text/csv``."""
    if fmt is not None:
        return fmt == "csv"
    return CSV in request.headers.get("accept", "").lower()


def csv_response(data: bytes, filename: str) -> Response[bytes]:
    """A CSV attachment named ``filename``, every character but ASCII letters, digits, ``.``,
    ``_`` and ``-`` replaced by ``_`` (ids may hold anything a header must not)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    return Response(
        data,
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


def respond(
    request: Request[Any, Any, Any],
    content: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    if wants_msgpack(request):
        body, media = _msgpack_encoder.encode(content), MSGPACK
    else:
        body, media = _json_encoder.encode(content), JSON
    return Response(body, status_code=status, media_type=media, headers=dict(headers or {}))


def error_response(request: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    body = ErrorBody(error=ErrorDetail(code=exc.code, message=exc.message, details=exc.details))
    return respond(request, body, exc.status, exc.headers)


class Negotiated(Response[Any]):
    """The response class of the supervisors' controllers: a handler's returned value encoded
    as :func:`respond` encodes it, MessagePack when the Accept header asks for it, else JSON."""

    def to_asgi_response(self, app: Any, request: Request[Any, Any, Any], **kwargs: Any) -> Any:
        if wants_msgpack(request) and self.content is not None:
            self.media_type = MSGPACK
        return super().to_asgi_response(app, request, **kwargs)

    def render(self, content: Any, media_type: str, enc_hook: Any = None) -> bytes:
        if isinstance(content, bytes) or content is None:
            return super().render(content, media_type, enc_hook)
        if media_type == MSGPACK:
            return _msgpack_encoder.encode(content)
        if media_type == JSON:
            return _json_encoder.encode(content)
        return super().render(content, media_type, enc_hook)
