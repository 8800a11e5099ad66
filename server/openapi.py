"""The OpenAPI document: wire Structs as component schemas, attached to the handlers that decode
bodies themselves (JSON or MessagePack), so client builders see every message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.reference import Reference

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
from schemas.sync import (
    EnrolmentCodeRequest,
    EnrolmentCodeResponse,
    EnrolRequest,
    EnrolResponse,
    PullResponse,
    PushRequestDoc,
    PushResponse,
    SyncConfig,
)

REF = "#/components/schemas/{name}"
MEDIA = ("application/json", "application/msgpack")
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
    ],
    ref_template=REF,
)


def _content(kind: type[Any]) -> dict[str, OpenAPIMediaType]:
    ref = Reference(ref=REF.format(name=kind.__name__))
    return {m: OpenAPIMediaType(schema=ref) for m in MEDIA}


def documented(
    request: type[Any] | None, response: type[Any], status: int = 200
) -> type[Operation]:
    """An Operation class that documents ``request`` as the body and ``response`` as the reply."""

    @dataclass
    class _Documented(Operation):
        def __post_init__(self) -> None:
            if request is not None:
                self.request_body = RequestBody(content=_content(request), required=True)
            replies = dict(self.responses or {})
            replies[str(status)] = OpenAPIResponse(description="OK", content=_content(response))
            replies["4XX"] = OpenAPIResponse(
                description="Error with a stable code", content=_content(ErrorBody)
            )
            self.responses = replies

    return _Documented


def config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="patrolsync",
        version="1",
        description="Sync protocol of patrolsync. See docs/protocol.md for the rules.",
        path="/schema",
        render_plugins=[ScalarRenderPlugin()],
    )


def add_components(app: Litestar) -> None:
    """Startup hook: add the wire Structs to the generated document's component schemas."""
    document = app.openapi_schema
    if document.components.schemas is None:
        document.components.schemas = {}
    document.components.schemas.update(cast(dict[str, Schema], COMPONENTS))
