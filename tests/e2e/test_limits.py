"""Backpressure and the device clock."""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from server import wire
from tests.support import HOUR, Fleet, new_id


async def test_push_at_inflight_limit_gets_429_then_succeeds(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    limiter = fleet.services.limiter
    held = 0
    while limiter.try_acquire():  # occupy every slot, as concurrent pushes would
        held += 1
    item = dev.checkin("xinhua-g1")
    push_id = new_id()
    refused = await fleet.post(
        "/v1/sync/push",
        {"push_id": str(push_id), "device_time_ms": 1, "items": [item]},
        dev.headers,
    )
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(fleet.services.settings.retry_after_s)
    assert refused.json()["error"]["code"] == "too_many_requests"
    changes, _ = await dev.pull_all()
    assert not [c for c in changes if c["type"] == "checkin"]
    for _ in range(held):
        limiter.release()
    accepted = await dev.push([item], push_id=push_id)
    assert accepted["results"][0]["status"] == "applied"


async def test_skew_is_recorded_and_times_corrected(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    dev.skew_ms = 3 * HOUR  # the phone's clock is three hours fast
    item = dev.checkin("xinhua-g1", hours=4)
    reply = await dev.push([item])
    assert abs(reply["skew_ms"] - 3 * HOUR) < 60_000
    assert "clock_skew" in reply["results"][0]["flags"]
    changes, _ = await dev.pull_all()
    record = next(c["record"] for c in changes if c["type"] == "checkin")
    assert record["device_ended_ms"] == item["ended_ms"]
    assert abs(record["ended_ms"] - (item["ended_ms"] - 3 * HOUR)) < 60_000
    assert record["duration_ms"] == 4 * HOUR


async def test_patrol_ending_in_the_future_is_flagged(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    reply = await dev.push([dev.checkin("xinhua-g1", ended_ago_ms=-2 * HOUR)])
    assert reply["results"][0]["status"] == "applied"
    assert "future_event" in reply["results"][0]["flags"]


async def test_openapi_documents_the_wire(fleet: Fleet) -> None:
    response = await fleet.client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    push = document["paths"]["/v1/sync/push"]["post"]
    content = push["requestBody"]["content"]
    assert content["application/json"]["schema"]["$ref"] == "#/components/schemas/PushRequestDoc"
    # MessagePack: bytes whose decoded content is the same type.
    msgpack = content["application/msgpack"]["schema"]
    assert (msgpack["type"], msgpack["format"]) == ("string", "binary")
    assert msgpack["contentMediaType"] == "application/msgpack"
    assert msgpack["contentSchema"]["$ref"] == "#/components/schemas/PushRequestDoc"
    schemas = document["components"]["schemas"]
    for name in ("PushRequestDoc", "PushResponse", "PullResponse", "CheckinOp", "NoteEditOp"):
        assert name in schemas, name
    assert "Patrolsync-Protocol" not in schemas
    # Every reference resolves (a generator, and the reference page, fail on a dangling one).
    named = set(re.findall(r'"#/components/schemas/([^"]+)"', response.text))
    assert named and named <= set(schemas), sorted(named - set(schemas))


async def test_health_readiness_and_metrics(fleet: Fleet) -> None:
    version = importlib.metadata.version("patrolsync")
    assert (await fleet.client.get("/healthz")).json() == {"status": "ok", "version": version}
    ready = await fleet.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    dev = await fleet.device("w-zhang")
    await dev.push([dev.checkin("xinhua-g1")])
    metrics = (await fleet.client.get("/metrics")).text
    assert 'patrolsync_push_items_total{status="applied"}' in metrics


async def test_cursor_behind_horizon_gets_410_rebootstrap(fleet: Fleet) -> None:
    from server.store import counter
    from server.tx import transaction

    dev = await fleet.device("w-zhang")
    _, cursor = await dev.pull_all()
    await dev.push([dev.checkin("xinhua-g1")])
    await transaction(fleet.services.engine, lambda c: counter.raise_horizon(c, (2**40, 0)))
    response = await fleet.client.get(
        "/v1/sync/pull", params={"cursor": cursor}, headers=dev.headers
    )
    assert response.status_code == 410
    error = response.json()["error"]
    assert error["code"] == "rebootstrap_required"
    assert error["details"]["reason"] == "cursor_expired"
    fresh, _ = await dev.pull_all()  # a bootstrap (no cursor) still works
    assert any(c["type"] == "checkin" for c in fresh)


async def test_cursor_ahead_of_server_gets_410(fleet: Fleet) -> None:
    from sync import cursor as cursors

    dev = await fleet.device("w-zhang")
    _, cursor = await dev.pull_all()
    ahead = cursors.encode(cursors.Cursor(txid=2**40, seq=1, scope=cursors.decode(cursor).scope))
    response = await fleet.client.get(
        "/v1/sync/pull", params={"cursor": ahead}, headers=dev.headers
    )
    assert response.status_code == 410
    assert response.json()["error"]["details"]["reason"] == "cursor_ahead"


async def test_after_prune_a_fresh_bootstrap_keeps_pulling(fleet: Fleet) -> None:
    """The horizon is the last forgotten change: a cursor at it is not behind."""
    from server.store import counter
    from server.store import push as push_store
    from server.tx import transaction

    dev = await fleet.device("w-zhang")
    _, before_delete = await dev.pull_all()
    note_id = new_id()
    created = dev.note(note_id, "h-xh-101", {"text": "临时"})
    await dev.push([created])
    delete = {
        "op": "note_delete",
        "note_id": str(note_id),
        "household_id": "h-xh-101",
        "clock": dev.tick(),
        "base": created["clock"],
    }
    await dev.push([delete])
    _, old_cursor = await dev.pull_all()

    async def prune(conn: object) -> tuple[int, int]:
        _, top = await push_store.prune_tombstones(conn, 10**15)  # type: ignore[arg-type]
        return await counter.raise_horizon(conn, top)  # type: ignore[arg-type]

    top = await transaction(fleet.services.engine, prune)
    assert top > (0, 0)
    # A download from scratch, two changes a page: its cursors sit before the horizon, but it
    # began after the prune, so it goes on to the end.
    changes, cursor = await dev.pull_all(limit=2)
    assert len(changes) == 3 and not [c for c in changes if c["type"] == "note"]
    again, _ = await dev.pull_all(cursor)
    assert again == []
    still, _ = await dev.pull_all(old_cursor)  # the old cursor had seen the tombstone
    assert still == []
    expired = await fleet.client.get(
        "/v1/sync/pull", params={"cursor": before_delete}, headers=dev.headers
    )
    assert expired.status_code == 410  # it may have missed the forgotten tombstone
    assert expired.json()["error"]["details"]["reason"] == "cursor_expired"


async def test_overlong_boot_id_is_an_item_rejection(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    reply = await dev.push([dev.checkin("xinhua-g1", boot_id="x" * 200), dev.checkin("xinhua-g1")])
    assert [r["status"] for r in reply["results"]] == ["rejected", "applied"]
    assert reply["results"][0]["code"] == "invalid_item"


def _slow_body(body: bytes, pause_s: float) -> Any:
    """A request body that sends its first bytes, then waits ``pause_s`` before the rest."""

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:5]
        await asyncio.sleep(pause_s)
        yield body[5:]

    return chunks()


def _push_body(dev: Any) -> bytes:
    envelope = {"push_id": str(new_id()), "device_time_ms": dev.now(), "items": []}
    return msgspec.json.encode(envelope)


async def test_slow_senders_do_not_take_the_push_capacity(fleet: Fleet) -> None:
    """More bodies trickling in than there are in-flight slots: a normal push is still served."""
    fleet.services.limiter.limit = 2  # in flight
    dev = await fleet.device("w-zhang")
    slow = await fleet.device("w-wang")
    headers = {**slow.headers, "Content-Type": "application/json"}
    senders = [
        asyncio.create_task(
            fleet.client.post(
                "/v1/sync/push", content=_slow_body(_push_body(slow), 1.5), headers=headers
            )
        )
        for _ in range(8)
    ]
    try:
        await asyncio.sleep(0.4)  # every slow body has started arriving
        reply = await dev.push([dev.checkin("xinhua-g1")])
        assert reply["results"][0]["status"] == "applied"
    finally:
        answers = await asyncio.gather(*senders)
    # Slow, not refused while sending; all done at once, they then compete for the two slots.
    assert {a.status_code for a in answers} <= {200, 429}
    assert 200 in {a.status_code for a in answers}


async def test_a_body_that_does_not_arrive_in_time_gets_408(fleet: Fleet) -> None:
    fleet.services.settings = fleet.services.settings.with_(body_timeout_s=0.2)
    dev = await fleet.device("w-zhang")
    headers = {**dev.headers, "Content-Type": "application/json"}
    late = await fleet.client.post(
        "/v1/sync/push", content=_slow_body(_push_body(dev), 5), headers=headers
    )
    assert late.status_code == 408, late.text
    assert late.json()["error"]["code"] == "request_timeout"
    assert late.headers["connection"] == "close"
    assert fleet.services.limiter.receiving.inflight == 0
    assert fleet.services.limiter.inflight == 0


async def test_bodies_being_received_are_capped_too(fleet: Fleet) -> None:
    limiter = fleet.services.limiter.receiving
    dev = await fleet.device("w-zhang")
    held = 0
    while limiter.try_acquire():
        held += 1
    try:
        refused = await fleet.post(
            "/v1/sync/push",
            {"push_id": str(new_id()), "device_time_ms": 1, "items": []},
            dev.headers,
        )
    finally:
        for _ in range(held):
            limiter.release()
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert "being received" in refused.json()["error"]["message"]


async def test_other_endpoints_bodies_are_bounded_in_time_and_size(fleet: Fleet) -> None:
    """Enrolment, comments, webhooks, settings, acknowledge: a body arriving too slowly gets
    408 and a too large one 413, and nothing is written."""
    fleet.services.settings = fleet.services.settings.with_(body_timeout_s=0.2)
    supervisor = await fleet.supervisor("s-xinhua")
    json_headers = {**supervisor, "Content-Type": "application/json"}
    writes = [
        ("/v1/auth/enrol", {}, {"code": "x" * 8, "device_id": "d-1"}),
        ("/v1/enrolments", json_headers, {"worker_id": "w-zhang"}),
        ("/v1/webhooks", json_headers, {"url": "https://hooks.test/a"}),
        ("/v1/alerts/1/comments", json_headers, {"text": "催办"}),
        ("/v1/alerts/1/acknowledge", json_headers, {"note": "收到"}),
    ]
    for path, headers, body in writes:
        encoded = msgspec.json.encode(body)
        late = await fleet.client.post(
            path, content=_slow_body(encoded, 5), headers={**headers, **_JSON}
        )
        assert late.status_code == 408, (path, late.text)
        assert late.json()["error"]["code"] == "request_timeout"
        huge = await fleet.client.post(
            path, content=b" " * (wire.SMALL_BODY_BYTES + 1), headers={**headers, **_JSON}
        )
        assert huge.status_code == 413, (path, huge.text)
    late = await fleet.client.put(
        "/v1/units/xinhua/settings",
        content=_slow_body(b'{"patrols_per_week": 2}', 5),
        headers=json_headers,
    )
    assert late.status_code == 408, late.text
    hooks = await fleet.client.get("/v1/webhooks", headers=supervisor)
    assert hooks.json() == []
    own = await fleet.client.get("/v1/units/xinhua/settings", headers=supervisor)
    assert own.json()["own"] == {}


_JSON = {"Content-Type": "application/json"}
