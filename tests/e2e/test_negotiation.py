"""Supervisors' endpoints answer in the media type the client's Accept asks for: MessagePack
when it names MessagePack, JSON otherwise; errors too. The same values either way."""

from __future__ import annotations

import msgspec

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
