"""The OpenAPI document: wire Structs as component schemas. Litestar documents the typed
handlers of the controllers (parameters, success status and reply); ``negotiated`` adds what
Litestar cannot see (the MessagePack reply, a body a dependency decodes, our ``ErrorBody``
errors). ``documented`` describes whole the handlers that answer raw bytes or special media
types: push and pull (their own body limits and per-item decoding), the sync config, the
health endpoints, the compliance CSV and the alert stream.

Invariants: every operation lists each status it can answer (its success, and every error
status with the ``ErrorBody`` of schemas/errors.py, whose codes are enums) and the media types it
really reads and writes; parameter bounds are the ones Litestar enforces (server/params.py).
Every operation has a readable ``operationId`` (set on its route) and lists the headers it
reads (``X-Request-ID`` everywhere, the protocol version on the device endpoints); every one
that takes a token names the bearer scheme. The schemathesis test
(tests/e2e/test_openapi_conformance.py) holds the document to the answers;
tests/e2e/test_generated_client.py generates a client from it with openapi-python-client (no
warning) and syncs through it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args, get_origin

import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.reference import Reference

from rules.policy import DEFAULTS, MAX_COUNT, MAX_SPAN_MS
from schemas.alerts import (
    Alert,
    AlertDetail,
    AlertNote,
    AlertPage,
    CommentIn,
    ComplianceReport,
    DeliveryOut,
    MyAlerts,
    StreamEvent,
    UnitSettings,
    WebhookIn,
    WebhookOut,
)
from schemas.errors import ErrorBody
from schemas.people import UnitPatrols, WorkerPatrols
from schemas.sync import (
    PROTOCOL_VERSIONS,
    EnrolmentCodeRequest,
    EnrolmentCodeResponse,
    EnrolRequest,
    EnrolResponse,
    PullResponse,
    PushRequestDoc,
    PushResponse,
    Revoked,
    SyncConfig,
)
from schemas.units import Unit
from server import access
from server.params import BIGINT_MAX

NOT_MIGRATED = "not_migrated"


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok"]
    version: str = ""
    """The server's version (the package's, as ``patrolsync --version`` prints it)."""


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["ready", "unavailable", "not_migrated"]
    """``not_migrated``: the database answers but ``patrolsync migrate`` has not brought it to
    this code's migration (or never ran)."""
    database: str
    """``ok``; otherwise the reason: an error's name, ``read-only`` or ``not_migrated``."""
    revision: str = ""
    """When not migrated: the database's migration (empty: never migrated)."""
    expected: str = ""
    """When not migrated: the migration this code carries."""


def _settings_schema() -> dict[str, Any]:
    """``PUT /v1/units/{unit_id}/settings``: any subset of the policy's settings (``tz`` is the
    unit's own, set by the import file)."""
    types = {int: "integer", float: "number", str: "string"}
    props: dict[str, Any] = {}
    for f in dataclasses.fields(DEFAULTS):
        if f.name == "tz":
            continue
        kind = type(getattr(DEFAULTS, f.name))
        prop: dict[str, Any] = {"type": types[kind], "default": getattr(DEFAULTS, f.name)}
        if kind is int:
            prop["minimum"] = 0
            prop["maximum"] = MAX_SPAN_MS if f.name.endswith("_ms") else MAX_COUNT
        elif kind is float:
            prop["minimum"] = 0
        props[f.name] = prop
    return {
        "title": "SettingsOverrides",
        "description": "A unit's own overrides; every setting left out is inherited. "
        "See docs/alerts.md for each setting's meaning and range.",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }


REF = "#/components/schemas/{name}"
MEDIA = ("application/json", "application/msgpack")
JSON_ONLY = ("application/json",)
_, COMPONENTS = msgspec.json.schema_components(
    [
        PushRequestDoc,
        PushResponse,
        PullResponse,
        SyncConfig,
        EnrolRequest,
        EnrolResponse,
        EnrolmentCodeRequest,
        EnrolmentCodeResponse,
        ErrorBody,
        Alert,
        AlertPage,
        AlertDetail,
        AlertNote,
        CommentIn,
        StreamEvent,
        UnitSettings,
        ComplianceReport,
        WebhookIn,
        WebhookOut,
        DeliveryOut,
        MyAlerts,
        Unit,
        Revoked,
        Health,
        Readiness,
        WorkerPatrols,
        UnitPatrols,
    ],
    ref_template=REF,
)
COMPONENTS["SettingsOverrides"] = _settings_schema()

ERRORS: dict[int, str] = {
    400: "Malformed body, unreadable cursor or unsupported protocol version",
    401: "Missing, unknown or revoked token",
    403: "The token's role may not use this operation",
    404: "No such thing in the caller's scope",
    408: "The body did not arrive in time; the connection is closed",
    409: "Conflicts with the current state",
    410: "The cursor cannot be served: bootstrap again",
    413: "The body is too large",
    415: "Unsupported content type",
    422: "A parameter or the body is invalid",
    429: "Too many requests: retry after Retry-After seconds",
    503: "The database is unavailable: retry after Retry-After seconds",
}
AUTH = (401, 403)
"""Every operation that needs a token."""
DB = (503,)
"""Every operation that reads or writes the database."""
BODY = (400, 408, 413, 415, 422)
"""Every operation that decodes a body by its content type."""
PARAMS = (422,)
"""Every operation with bounded path or query parameters."""

_RETRY: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait"
    )
}


def _schema(kind: Any) -> Schema | Reference:
    """A Struct as a reference to its component, ``list[Struct]`` as an array, ``str`` as text;
    a Schema as it is."""
    if isinstance(kind, Schema):
        return kind
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        return Schema(type=OpenAPIType.ARRAY, items=_schema(item))
    if kind is str:
        return Schema(type=OpenAPIType.STRING)
    if isinstance(kind, str):
        return Reference(ref=REF.format(name=kind))
    return Reference(ref=REF.format(name=kind.__name__))


STREAM_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    description="One server-sent event: `event: alert`, `id: <txid>.<seq>`, and as `data` a "
    "StreamEvent in JSON.",
    required=["data"],
    properties={
        "event": Schema(type=OpenAPIType.STRING, const="alert"),
        "id": Schema(type=OpenAPIType.STRING, pattern=r"^[0-9]+\.[0-9]+$"),
        "data": Schema(
            type=OpenAPIType.STRING,
            content_media_type="application/json",
            content_schema=Reference(ref=REF.format(name="StreamEvent")),
        ),
    },
)
"""Each event of ``GET /v1/alerts/stream`` (``text/event-stream``)."""


COMPONENTS["ProtocolVersion"] = {
    "title": "ProtocolVersion",
    "description": "A sync protocol version this server speaks, as the Patrolsync-Protocol "
    "header carries it (ASCII digits).",
    "type": "string",
    "enum": [str(v) for v in PROTOCOL_VERSIONS],
}
PROTOCOL = Parameter(
    name="Patrolsync-Protocol",
    param_in="header",
    required=True,
    description="The sync protocol version the client speaks (400 unsupported_protocol if not "
    "one of the server's).",
    schema=Reference(ref=REF.format(name="ProtocolVersion")),
)
"""The version header of the device endpoints."""
REQUEST_ID = Parameter(
    name=access.HEADER,
    param_in="header",
    required=False,
    description=f"Names the request in the server's logs (and the worker's jobs it causes); the "
    f"reply carries it back. 1 to {access.MAX_ID} characters of `A-Z a-z 0-9 . _ : = + / -`; "
    "anything else is replaced by a new id (32 hex digits), never refused.",
    schema=Schema(type=OpenAPIType.STRING),
)
"""Read by every operation (server/access.py)."""
LAST_EVENT_ID = Parameter(
    name="Last-Event-ID",
    param_in="header",
    required=False,
    description="Resume after this event id (wins over `after`).",
    schema=Schema(type=OpenAPIType.STRING),
)


SSE = "text/event-stream"
MSGPACK = "application/msgpack"


@dataclass
class SequentialMediaType(OpenAPIMediaType):
    """A media type whose body is a sequence of items (``text/event-stream``): ``itemSchema``
    describes each item, as OpenAPI 3.2 spells it, and no ``schema`` describes the whole (a
    generator then hands the body over as it came, instead of parsing the stream as one
    object). Schemathesis reads ``itemSchema`` and checks every event against it."""

    item_schema: Schema | Reference | None = None


def _content(kind: Any, media: Sequence[str] = MEDIA) -> dict[str, OpenAPIMediaType]:
    """A reply's content: ``kind`` in each media type (each event of a stream)."""
    return {
        m: SequentialMediaType(item_schema=_schema(kind))
        if m == SSE
        else OpenAPIMediaType(schema=_schema(kind))
        for m in media
    }


def _body(kind: Any, media: Sequence[str] = MEDIA) -> dict[str, OpenAPIMediaType]:
    """A request body's content. In MessagePack it is bytes whose decoded content is ``kind``
    (JSON Schema's ``contentMediaType`` and ``contentSchema``): a generator that cannot encode
    MessagePack is told to send bytes (openapi-python-client: a ``File``, with
    docs/openapi-python-client.yaml), and a reader sees the same type as the JSON body's."""
    content = _content(kind, [m for m in media if m != MSGPACK])
    if MSGPACK in media:
        content[MSGPACK] = OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.STRING,
                format=OpenAPIFormat.BINARY,
                content_media_type=MSGPACK,
                content_schema=_schema(kind),
                description=f"{_name(kind)} encoded in MessagePack",
            )
        )
    return content


def _name(kind: Any) -> str:
    return kind if isinstance(kind, str) else getattr(kind, "__name__", "The body")


def _error(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=ERRORS[status],
        content=_content(ErrorBody),
        headers=_RETRY if status in (429, 503) else None,
    )


def documented(
    request: Any | None,
    response: Any | None,
    status: int = 200,
    *,
    errors: Iterable[int] = (),
    body_media: Sequence[str] = MEDIA,
    reply_media: Sequence[str] = MEDIA,
    also: Mapping[str, Any] | None = None,
    replies: Mapping[int, Any] | None = None,
    headers: Sequence[Parameter] = (),
) -> type[Operation]:
    """An Operation class for a handler that answers bytes: ``request`` the body (in
    ``body_media``), ``response`` the reply of ``status`` (in ``reply_media``, plus the media
    types of ``also``; None: no body), ``replies`` other statuses with their own bodies; the
    rest as :func:`negotiated`."""
    content = None
    if response is not None:
        content = _content(response, reply_media)
        for media, kind in (also or {}).items():
            content[media] = OpenAPIMediaType(schema=_schema(kind))
    answers: dict[str, OpenAPIResponse] = {
        str(status): OpenAPIResponse(description="OK", content=content)
    }
    for other, kind in (replies or {}).items():
        answers[str(other)] = OpenAPIResponse(
            description=ERRORS.get(other, "See the body"),
            content=_content(kind, reply_media),
            headers=_RETRY if other in (429, 503) else None,
        )
    return negotiated(
        errors=errors, body=request, body_media=body_media, headers=headers, success=answers
    )


def negotiated(
    *,
    errors: Iterable[int] = (),
    body: Any | None = None,
    body_media: Sequence[str] = MEDIA,
    body_required: bool = True,
    headers: Sequence[Parameter] = (),
    success: Mapping[str, OpenAPIResponse] | None = None,
) -> type[Operation]:
    """An Operation class for a handler with a typed return (Litestar documents its success
    reply and its parameters): the reply offered in JSON and MessagePack (``wire.Negotiated``
    answers either), ``body`` the request body a dependency decodes (in ``body_media``), each
    of ``errors`` with an ``ErrorBody`` in place of Litestar's own error entries, and
    ``headers`` the request headers a guard or the handler reads. ``success``: the answers to
    document in place of Litestar's."""
    statuses = sorted(set(errors))
    unknown = set(statuses) - set(ERRORS)
    if unknown:
        raise ValueError(f"undocumented error statuses: {sorted(unknown)}")

    @dataclass
    class _Negotiated(Operation):
        def __post_init__(self) -> None:
            if body is not None:
                content = _body(body, body_media)
                self.request_body = RequestBody(content=content, required=body_required)
            if 401 in statuses:
                self.security = [{BEARER: []}]
            answers: dict[str, OpenAPIResponse | Reference] = copy.deepcopy(dict(success or {}))
            for code, answer in (self.responses or {}).items():
                if success or int(code) >= 400 or not isinstance(answer, OpenAPIResponse):
                    continue
                if answer.content:
                    (schema,) = {id(m.schema): m.schema for m in answer.content.values()}.values()
                    answer.content = {m: OpenAPIMediaType(schema=schema) for m in MEDIA}
                answers[code] = answer
            for status in statuses:
                answers.setdefault(str(status), _error(status))
            self.responses = answers
            self.parameters = [*(_plain(p) for p in self.parameters or []), *headers, REQUEST_ID]

    return _Negotiated


def _plain(param: Parameter | Reference) -> Parameter | Reference:
    """A query parameter as a client sends it: Litestar documents an optional ``str | None`` as
    ``oneOf [string, null]``, but a query string has no null, only an absent parameter."""
    schema = getattr(param, "schema", None)
    if not isinstance(param, Parameter) or not isinstance(schema, Schema):
        return param
    if isinstance(schema.type, list) and not schema.one_of:
        # ``type: [null, string]`` with ``None`` among an enum's values: the same, spelt flat.
        types = [t for t in schema.type if t != OpenAPIType.NULL]
        if len(types) != 1:
            return param
        enum = [v for v in schema.enum if v is not None] if schema.enum else schema.enum
        return dataclasses.replace(
            param, schema=dataclasses.replace(schema, type=types[0], enum=enum)
        )
    if not schema.one_of:
        return param
    kept = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == OpenAPIType.NULL)]
    if len(kept) != 1 or not isinstance(kept[0], Schema):
        return param
    merged = dataclasses.replace(schema, one_of=None, type=kept[0].type, enum=kept[0].enum)
    return dataclasses.replace(param, schema=merged)


def _ecma(node: Any) -> None:
    """Make the document say what the code enforces, in JSON Schema's terms: patterns end in
    ``$`` (the code's ``\\Z``) and integer bounds are integers (Litestar writes them as floats,
    which would turn BIGINT_MAX into 2**63)."""
    if isinstance(node, Schema):
        if node.pattern and node.pattern.endswith("\\Z"):
            node.pattern = node.pattern[:-2] + "$"
        if node.type == OpenAPIType.INTEGER:
            for name in ("maximum", "minimum"):
                value = getattr(node, name)
                if isinstance(value, float) and value.is_integer():
                    setattr(node, name, BIGINT_MAX if value >= 2**63 else int(value))
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("\\Z"):
            node["pattern"] = pattern[:-2] + "$"
        for value in node.values():
            _ecma(value)
    elif isinstance(node, list | tuple):
        for value in node:
            _ecma(value)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            _ecma(getattr(node, f.name))


BEARER = "bearerToken"
"""The security scheme of every operation that takes a token."""


def config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="patrolsync",
        version="1",
        description="Sync protocol of patrolsync. See docs/protocol.md for the rules, and for "
        "how to generate a client from this document.",
        path="/schema",
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A device's token (POST /v1/auth/enrol) or a supervisor's: "
                    "`Authorization: Bearer <token>`.",
                )
            }
        ),
        # Served from the package's own static files (no CDN, no outside font or icon): the
        # reference renders on an intranet with no internet.
        render_plugins=[
            RedocRenderPlugin(
                js_url="/static/redoc.standalone.js",
                google_fonts=False,
                favicon="<link rel='icon' href='data:,'>",
            )
        ],
    )


def add_components(app: Litestar) -> None:
    """Startup hook: add the wire Structs to the generated document's component schemas."""
    document = app.openapi_schema
    if document.components.schemas is None:
        document.components.schemas = {}
    document.components.schemas.update(cast(dict[str, Schema], COMPONENTS))
    _ecma(document)
