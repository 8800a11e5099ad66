"""A client generated from the served OpenAPI document works.

openapi-python-client (a test extra) generates a Python package from ``/schema/openapi.json``
with docs/openapi-python-client.yaml, as docs/protocol.md tells client builders to, and must say
nothing but that it generated it: no warning, no skipped part. The generated code then does what
a phone app does, against the real app: a supervisor issues an enrolment code, two devices
enrol, push check-ins (JSON) and note edits (one in MessagePack) with the protocol header, and
pull them back as typed records; errors come back as the typed ``ErrorBody`` with enum codes,
and a revoke answers the status the document gives.

A second test holds the document to what generators need: a bearer scheme on every operation
that takes a token, readable unique operation ids, an ``ErrorBody`` for every error status,
enums for the error codes, a typed ``record``, the media types of MessagePack, CSV and SSE.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import msgspec
import pytest

from schemas.sync import PROTOCOL_VERSIONS
from server.app import create_app
from server.db import make_engine
from server.errors import Code, ItemCode
from server.settings import Settings
from sync.hlc import tick
from tests.conftest import reset
from tests.support import HOUR, Clock, Fleet, new_id

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "openapi-python-client.yaml"
PACKAGE = "patrolsync_client"
BASE = "http://testserver"

_generated: dict[str, ModuleType] = {}
"""The package generated from each document text (one per session: the document is the same
on every backend)."""


def _generate(document: str, into: Path) -> str:
    """Run the generator as a client builder would; its whole output."""
    (into / "openapi.json").write_text(document, encoding="utf-8")
    # Its post hooks format the code with ruff, from this environment (a test extra too).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(into / "openapi.json"),
            "--config",
            str(CONFIG),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        cwd=into,
        env={**os.environ, "PATH": path},
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def _package(document: str, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    if document not in _generated:
        into = tmp_path_factory.mktemp("generated")
        output = _generate(document, into)
        # Only "Generating patrolsync_client": any warning, error or skipped hook is a failure.
        lines = [line for line in output.splitlines() if line.strip()]
        assert lines == [f"Generating {into / PACKAGE}"], output
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        sys.path.insert(0, str(into))
        try:
            _generated[document] = importlib.import_module(PACKAGE)
        finally:
            sys.path.remove(str(into))  # its submodules load through the package's own path
    return _generated[document]


@dataclass
class Generated:
    """The generated package, its modules by dotted name, and clients on the app."""

    package: ModuleType
    transport: httpx.AsyncBaseTransport

    def __call__(self, name: str) -> Any:
        return importlib.import_module(f"{self.package.__name__}.{name}")

    def anonymous(self) -> Any:
        return self("client").Client(base_url=BASE, httpx_args={"transport": self.transport})

    def authenticated(self, token: str) -> Any:
        return self("client").AuthenticatedClient(
            base_url=BASE, token=token, httpx_args={"transport": self.transport}
        )


@asynccontextmanager
async def _app(settings: Settings) -> AsyncIterator[tuple[Fleet, httpx.ASGITransport]]:
    """The app on the sample district, as tests/conftest.py's ``running`` makes it, with the
    transport the generated clients reach it through."""
    await reset(settings)
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Fleet(client, app.state.services), transport
    finally:
        await app.state.services.live.stop()
        await engine.dispose()


async def test_a_generated_client_enrols_pushes_and_pulls(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with _app(settings) as (fleet, transport):
        served = await fleet.client.get("/schema/openapi.json")
        assert served.status_code == 200
        gen = Generated(_package(served.text, tmp_path_factory), transport)
        models = gen("models")
        api: Callable[[str], Any] = lambda name: gen(f"api.default.{name}")  # noqa: E731
        version = models.ProtocolVersion(str(PROTOCOL_VERSIONS[-1]))
        # The server's clock stands still: no skew between a device's sending and the server's
        # receiving, so the corrected times are the device's exactly.
        fleet.services.clock = now = Clock(fleet.services.clock())

        # A supervisor (token as the tests make one) issues codes; devices enrol with them.
        supervisor_token = (await fleet.supervisor("s-dongfeng"))["Authorization"].split()[1]
        supervisor = gen.authenticated(supervisor_token)
        tokens: dict[str, str] = {}
        # 张伟's phone a and 王芳's phone b: both patrol xinhua-g1.
        for device_id, worker_id in (("dev-gen-a", "w-zhang"), ("dev-gen-b", "w-wang")):
            issued = await api("issue_enrolment_code").asyncio(
                client=supervisor, body=models.EnrolmentCodeRequest(worker_id=worker_id)
            )
            assert isinstance(issued, models.EnrolmentCodeResponse), issued
            enrolled = await api("enrol").asyncio_detailed(
                client=gen.anonymous(),
                body=models.EnrolRequest(code=issued.code, device_id=device_id, platform="gen"),
            )
            assert enrolled.status_code == 201
            assert isinstance(enrolled.parsed, models.EnrolResponse), enrolled.content
            assert enrolled.parsed.device_id == device_id and "xinhua-g1" in enrolled.parsed.grids
            tokens[device_id] = enrolled.parsed.token
        a, b = gen.authenticated(tokens["dev-gen-a"]), gen.authenticated(tokens["dev-gen-b"])

        config = await api("get_sync_config").asyncio(client=a)
        assert isinstance(config, models.SyncConfig)
        assert config.protocol_header == "Patrolsync-Protocol"
        assert PROTOCOL_VERSIONS[-1] in config.protocol_versions

        # Two check-ins and one the server must reject, as JSON.
        ended = now() - HOUR
        patrols = [new_id(), new_id()]
        items = [
            models.CheckinOp(
                op=models.CheckinOpOp.CHECKIN,
                id=pid,
                grid_id="xinhua-g1",
                started_ms=ended - (4 + i) * HOUR,
                ended_ms=ended,
                elapsed_ms=(4 + i) * HOUR,
            )
            for i, pid in enumerate(patrols)
        ]
        items.append(
            models.CheckinOp(
                op=models.CheckinOpOp.CHECKIN,
                id=new_id(),
                grid_id="no-such-grid",
                started_ms=ended - HOUR,
                ended_ms=ended,
            )
        )
        body = models.PushRequestDoc(push_id=uuid.uuid4(), device_time_ms=now(), items=items)
        pushed = await api("push").asyncio(client=a, body=body, patrolsync_protocol=version)
        assert isinstance(pushed, models.PushResponse), pushed
        statuses = [(r.index, r.status, r.id) for r in pushed.results]
        assert statuses[:2] == [
            (0, models.ItemResultStatus.APPLIED, patrols[0]),
            (1, models.ItemResultStatus.APPLIED, patrols[1]),
        ]
        assert pushed.results[2].status == models.ItemResultStatus.REJECTED
        assert pushed.results[2].code is models.ItemCode(ItemCode.UNKNOWN_GRID)

        # A note from device a, in MessagePack: bytes, as the document gives that body.
        note_id = new_id()
        clock_a = tick(None, now(), "dev-gen-a").encode()
        edit = models.NoteEditOp(
            op=models.NoteEditOpOp.NOTE,
            note_id=note_id,
            household_id="h-xh-101",
            clock=clock_a,
            fields=models.NoteFields(text="老人想要扶手", follow_up=True),
        )
        doc = models.PushRequestDoc(push_id=uuid.uuid4(), device_time_ms=now(), items=[edit])
        packed = gen("types").File(payload=msgspec.msgpack.encode(doc.to_dict()))
        pushed = await api("push").asyncio(client=a, body=packed, patrolsync_protocol=version)
        assert isinstance(pushed, models.PushResponse), pushed
        assert [(r.status, r.id) for r in pushed.results] == [
            (models.ItemResultStatus.APPLIED, note_id)
        ]

        # 王芳 edits the same text on b with an older clock: it loses, and the reply's record
        # is the note after the merge, typed.
        clock_b = tick(None, now() - 2 * HOUR, "dev-gen-b").encode()
        late = models.NoteEditOp(
            op=models.NoteEditOpOp.NOTE,
            note_id=note_id,
            household_id="h-xh-101",
            clock=clock_b,
            fields=models.NoteFields(text="已装好"),
        )
        doc = models.PushRequestDoc(push_id=uuid.uuid4(), device_time_ms=now(), items=[late])
        pushed = await api("push").asyncio(client=b, body=doc, patrolsync_protocol=version)
        assert isinstance(pushed, models.PushResponse), pushed
        (merged,) = pushed.results
        assert merged.status == models.ItemResultStatus.MERGED
        assert isinstance(merged.record, models.NoteRecord)
        assert merged.record.id == note_id and merged.record.author_id == "w-zhang"
        assert merged.record.fields["text"] == "老人想要扶手"
        assert merged.record.clocks["text"] == clock_a

        # Each device pulls everything back, page by page, as typed changes.
        async def pull_all(client: Any) -> list[Any]:
            changes: list[Any] = []
            cursor: Any = gen("types").UNSET
            while True:
                page = await api("pull").asyncio(
                    client=client, cursor=cursor, limit=50, patrolsync_protocol=version
                )
                assert isinstance(page, models.PullResponse), page
                changes.extend(page.changes)
                cursor = page.cursor
                if not page.more:
                    return changes

        pulled = await pull_all(a)
        checkins = {c.record.id: c.record for c in pulled if isinstance(c, models.CheckinChange)}
        assert set(checkins) == set(patrols)
        for i, pid in enumerate(patrols):
            record = checkins[pid]
            assert (record.grid_id, record.worker_id, record.device_id) == (
                "xinhua-g1",
                "w-zhang",
                "dev-gen-a",
            )
            assert (record.ended_ms, record.duration_ms) == (ended, (4 + i) * HOUR)
        (note,) = [c.record for c in pulled if isinstance(c, models.NoteChange)]
        assert note.id == note_id and note.fields["text"] == "老人想要扶手"
        assert note.fields["follow_up"] is True
        assert note.to_dict() == merged.record.to_dict()
        assert any(isinstance(c, models.HouseholdChange) for c in pulled)
        assert not any(isinstance(c, models.ConflictChange) for c in pulled)
        # Only the losing worker's pull carries the conflict record of the edit.
        conflicts = [c.record for c in await pull_all(b) if isinstance(c, models.ConflictChange)]
        assert [(c.note_id, c.field, c.losing_value) for c in conflicts] == [
            (note_id, "text", "已装好")
        ]

        # Errors: the typed ErrorBody, its code an enum member.
        bad = await api("pull").asyncio_detailed(
            client=a, cursor="not-a-cursor", patrolsync_protocol=version
        )
        assert bad.status_code == 400
        assert isinstance(bad.parsed, models.ErrorBody)
        assert bad.parsed.error.code is models.ErrorCode(Code.CURSOR_INVALID)

        # A revoke answers the status the document gives it, and the token stops working.
        revoked = await api("revoke_device").asyncio_detailed(
            client=supervisor, device_id="dev-gen-b"
        )
        assert revoked.status_code == 200
        assert isinstance(revoked.parsed, models.Revoked) and revoked.parsed.revoked
        refused = await api("pull").asyncio_detailed(client=b, patrolsync_protocol=version)
        assert refused.status_code == 401
        assert isinstance(refused.parsed, models.ErrorBody)
        assert refused.parsed.error.code is models.ErrorCode(Code.TOKEN_REVOKED)


READINESS = {"$ref": "#/components/schemas/Readiness"}


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


async def test_the_document_says_what_generators_need(fleet: Fleet) -> None:
    response = await fleet.client.get("/schema/openapi.json")
    document = response.json()
    schemas = document["components"]["schemas"]
    scheme = document["components"]["securitySchemes"]["bearerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    ids: list[str] = []
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            ids.append(op["operationId"])
            assert re.fullmatch(r"[a-z][A-Za-z]+", op["operationId"]), where
            takes_token = "401" in op["responses"]
            assert op.get("security") == ([{"bearerToken": []}] if takes_token else None), where
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    # readiness is a report either way: 503 is "not ready", with the reason
                    ref = READINESS if (path, status) == ("/readyz", "503") else error_ref
                    assert answer["content"]["application/json"]["schema"] == ref, where
            headers = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "header"}
            if path in ("/v1/sync/push", "/v1/sync/pull", "/v1/me/alerts"):
                protocol = headers["Patrolsync-Protocol"]
                assert protocol["required"] is True, where
                version = _resolve(document, protocol["schema"])
                assert version["enum"] == [str(v) for v in PROTOCOL_VERSIONS]
            body = op.get("requestBody", {}).get("content", {})
            if "application/msgpack" in body:
                packed = body["application/msgpack"]["schema"]
                assert packed["format"] == "binary", where
                assert packed["contentSchema"] == body["application/json"]["schema"], where
    assert len(ids) == len(set(ids)), sorted(ids)

    # Error codes as enums, each of the code's; the push result's record typed.
    detail = _resolve(document, schemas["ErrorBody"]["properties"]["error"])
    codes = _resolve(document, detail["properties"]["code"])["enum"]
    assert sorted(codes) == sorted(c.value for c in Code)
    result = schemas["ItemResult"]["properties"]
    (code_ref,) = [s for s in result["code"]["anyOf"] if "$ref" in s]
    assert sorted(_resolve(document, code_ref)["enum"]) == sorted(c.value for c in ItemCode)
    assert {"$ref": "#/components/schemas/NoteRecord"} in result["record"]["anyOf"]

    # Media types: CSV beside JSON, each SSE event described, MessagePack replies.
    paths = document["paths"]
    for path in ("/v1/alerts", "/v1/compliance", "/v1/units/{unit_id}/patrols"):
        assert paths[path]["get"]["responses"]["200"]["content"]["text/csv"]["schema"] == {
            "type": "string"
        }
    stream = paths["/v1/alerts/stream"]["get"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"] and "schema" not in stream["text/event-stream"]
    event = stream["text/event-stream"]["itemSchema"]["properties"]["data"]["contentSchema"]
    assert event == {"$ref": "#/components/schemas/StreamEvent"}
    pull = paths["/v1/sync/pull"]["get"]["responses"]["200"]["content"]
    assert set(pull) == {"application/json", "application/msgpack"}

    # The reference page loads its script from the package, nothing from outside.
    page = await fleet.client.get("/schema")
    assert page.status_code == 200
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", page.text), page.text
    script = await fleet.client.get("/static/redoc.standalone.js")
    assert script.status_code == 200
    shipped = ROOT / "server" / "console" / "static" / "redoc.standalone.js"
    assert script.content == shipped.read_bytes()
