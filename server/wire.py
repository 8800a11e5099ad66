"""Content negotiation: JSON or MessagePack in, the client's preference out. Codecs built once."""

from __future__ import annotations

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


async def read_body(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The whole request body, decoded by its content type (small bodies: no size guard)."""
    msgpack = is_msgpack(request.headers.get("content-type", ""))
    return decode(await request.body(), kind, msgpack=msgpack)


def item_decoder(kind: Any, *, msgpack: bool) -> Any:
    """A decoder for single items (look it up once per request, not per item)."""
    return _decoder(kind, msgpack)


def wants_msgpack(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return any(t in accept for t in _MSGPACK_TYPES)


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
    body = ErrorBody(
        error=ErrorDetail(code=str(exc.code), message=exc.message, details=exc.details)
    )
    return respond(request, body, exc.status, exc.headers)
