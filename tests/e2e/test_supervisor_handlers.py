"""The supervisors' controllers: replies in the media type the client's Accept asks for
(MessagePack when it names MessagePack, JSON otherwise; errors too; the same values either
way); the token and its role checked before parameters and bodies; the caller authenticated
once per request."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from server.routes import deps
from tests.support import Fleet

MSGPACK = {"Accept": "application/msgpack"}


async def test_a_supervisor_reply_is_messagepack_when_accept_asks(fleet: Fleet) -> None:
    boss = await fleet.supervisor("s-xinhua")
    for path in ("/v1/units/xinhua", "/v1/units/xinhua/settings", "/v1/webhooks"):
        as_json = await fleet.client.get(path, headers=boss)
        packed = await fleet.client.get(path, headers={**boss, **MSGPACK})
        assert as_json.status_code == packed.status_code == 200, packed.text
        assert as_json.headers["content-type"] == "application/json"
        assert packed.headers["content-type"] == "application/msgpack"
        assert msgspec.msgpack.decode(packed.content) == as_json.json()


async def test_a_created_webhook_and_an_error_follow_accept(fleet: Fleet) -> None:
    boss = await fleet.supervisor("s-xinhua")
    created = await fleet.post("/v1/webhooks", {"url": "https://hooks.test/a"}, boss, msgpack=True)
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/msgpack"
    assert msgspec.msgpack.decode(created.content)["secret"].startswith("whsec_")
    device = await fleet.device("w-zhang")
    refused = await fleet.client.get("/v1/units/xinhua", headers={**device.headers, **MSGPACK})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/msgpack"
    assert msgspec.msgpack.decode(refused.content)["error"]["code"] == "forbidden"


async def test_the_role_is_checked_before_parameters_and_bodies(fleet: Fleet) -> None:
    device = await fleet.device("w-zhang")
    for method, path in [
        ("GET", "/v1/units/%00"),
        ("GET", "/v1/webhooks/0/deliveries"),
        ("POST", "/v1/alerts/0/acknowledge"),
        ("PUT", "/v1/units/xinhua/settings"),
    ]:
        for headers, status in (({}, 401), (device.headers, 403)):
            reply = await fleet.client.request(method, path, headers=headers, content=b"{")
            assert reply.status_code == status, (method, path, reply.text)


async def test_the_caller_is_authenticated_once_per_request(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await fleet.supervisor("s-xinhua")
    calls: list[Any] = []
    real = deps.principal

    async def counted(connection: Any) -> Any:
        calls.append(connection)
        return await real(connection)

    monkeypatch.setattr(deps, "principal", counted)
    reply = await fleet.post("/v1/webhooks", {"url": "https://hooks.test/b"}, boss)
    assert reply.status_code == 201, reply.text
    assert len(calls) == 1
