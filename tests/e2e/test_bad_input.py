"""Bad input: a 4xx with a stable code, nothing written; a bad item never sinks its neighbours."""

from __future__ import annotations

import importlib.metadata

import msgspec
import pytest

from server.clock import wall_ms
from tests.support import HOUR, PROTOCOL, Device, Fleet, new_id


async def _count_checkins(dev: Device) -> int:
    changes, _ = await dev.pull_all()
    return sum(1 for c in changes if c["type"] == "checkin")


async def _raw_push(dev: Device, content: bytes, content_type: str = "application/json") -> dict:
    response = await dev.fleet.client.post(
        "/v1/sync/push", content=content, headers={**dev.headers, "Content-Type": content_type}
    )
    return {"status": response.status_code, "body": response.json(), "headers": response.headers}


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"items": [1, 2', "application/json", 400, "malformed_body"),
        (b"\xc1\xc1\xc1", "application/msgpack", 400, "malformed_body"),
        (
            b'{"push_id": 5, "device_time_ms": 1, "items": []}',
            "application/json",
            422,
            "invalid_request",
        ),
        (b'{"device_time_ms": 1, "items": []}', "application/json", 422, "invalid_request"),
        (b"<xml/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
async def test_malformed_bodies(
    fleet: Fleet, content: bytes, content_type: str, status: int, code: str
) -> None:
    dev = await fleet.device("w-zhang")
    reply = await _raw_push(dev, content, content_type)
    assert reply["status"] == status
    assert reply["body"]["error"]["code"] == code
    assert await _count_checkins(dev) == 0


async def test_bad_items_rejected_with_codes_neighbours_applied(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    good = dev.checkin("xinhua-g1")
    now = wall_ms()
    bad_cases = {
        "invalid_item": {
            "op": "checkin",
            "id": str(new_id()),
            "grid_id": "xinhua-g1",
            "started_ms": "yesterday",
            "ended_ms": now,
        },
        "invalid_item ": {"op": "teleport", "id": str(new_id())},
        "end_before_start": dev.checkin(
            "xinhua-g1", started_ms=now, ended_ms=now - HOUR, elapsed_ms=None
        ),
        "invalid_duration": dev.checkin("xinhua-g1", elapsed_ms=-5),
        "invalid_duration ": dev.checkin("xinhua-g1", hours=30, elapsed_ms=30 * HOUR),
        "unknown_household": dev.checkin("xinhua-g1", households=["h-nowhere"]),
        "unknown_household  ": dev.checkin("xinhua-g1", households=["h-qz-101"]),
        "unknown_grid": dev.checkin("no-such-grid"),
        "forbidden_grid": dev.checkin("qunzhong-g1"),
        "forbidden_worker": dev.checkin("xinhua-g1", worker_id="w-li"),
        "invalid_item  ": {
            "op": "checkin",
            "id": str(new_id()),
            "grid_id": "xinhua-g1",
            "started_ms": now - HOUR,
            "ended_ms": now,
            "visit_count": -1,
        },
    }
    items = [good, *bad_cases.values(), dev.checkin("xinhua-g1", hours=1)]
    reply = await dev.push(items)
    results = reply["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert results[0]["status"] == "applied"
    assert results[-1]["status"] == "applied"
    for expected, result in zip(bad_cases, results[1:-1], strict=True):
        assert result["status"] == "rejected", (expected, result)
        assert result["code"] == expected.strip(), (expected, result)
        assert result["reason"]
    assert await _count_checkins(dev) == 2


async def test_rejection_is_final(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    item = dev.checkin("xinhua-g1", households=["h-nowhere"])
    first = await dev.push([item])
    again = await dev.push([item])
    assert first["results"][0]["code"] == again["results"][0]["code"] == "unknown_household"


async def test_note_for_unknown_household_rejected(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    reply = await dev.push([dev.note(new_id(), "h-none", {"text": "无此户"})])
    assert reply["results"][0]["code"] == "unknown_household"
    reply = await dev.push([dev.note(new_id(), "h-qz-101", {"text": "别的网格"})])
    assert reply["results"][0]["code"] == "forbidden_grid"


async def test_oversized_batch_413_with_limit(fleet: Fleet) -> None:
    fleet.services.settings = fleet.services.settings.with_(max_push_items=5)
    dev = await fleet.device("w-zhang")
    response = await fleet.post(
        "/v1/sync/push",
        {
            "push_id": str(new_id()),
            "device_time_ms": wall_ms(),
            "items": [dev.checkin("xinhua-g1") for _ in range(6)],
        },
        dev.headers,
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"]["max_push_items"] == 5
    assert await _count_checkins(dev) == 0


async def test_oversized_body_413_with_limit(fleet: Fleet) -> None:
    fleet.services.settings = fleet.services.settings.with_(max_push_bytes=2000)
    dev = await fleet.device("w-zhang")
    body = msgspec.json.encode(
        {
            "push_id": str(new_id()),
            "device_time_ms": wall_ms(),
            "items": [dev.checkin("xinhua-g1") for _ in range(20)],
        }
    )
    reply = await _raw_push(dev, body)
    assert reply["status"] == 413
    assert reply["body"]["error"]["details"]["max_push_bytes"] == 2000
    assert await _count_checkins(dev) == 0


@pytest.mark.parametrize("version", [None, "0", "2", "one"])
async def test_unsupported_protocol_names_the_range(fleet: Fleet, version: str | None) -> None:
    dev = await fleet.device("w-zhang")
    headers = {k: v for k, v in dev.headers.items() if k != "Patrolsync-Protocol"}
    if version is not None:
        headers["Patrolsync-Protocol"] = version
    body = {
        "push_id": str(new_id()),
        "device_time_ms": wall_ms(),
        "items": [dev.checkin("xinhua-g1")],
    }
    response = await fleet.post("/v1/sync/push", body, headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_protocol"
    assert error["details"]["supported"] == {"min": 1, "max": 1}
    pulled = await fleet.client.get("/v1/sync/pull", headers=headers)
    assert pulled.status_code == 400
    assert await _count_checkins(dev) == 0


async def test_handshake_tells_limits_and_versions(fleet: Fleet) -> None:
    response = await fleet.client.get("/v1/sync/config")
    assert response.status_code == 200
    config = response.json()
    assert config["protocol_versions"] == [1]
    assert config["protocol_header"] == "Patrolsync-Protocol"
    assert config["server_version"] == importlib.metadata.version("patrolsync")
    assert config["limits"]["max_push_items"] == fleet.services.settings.max_push_items
    assert config["limits"]["body_timeout_s"] == fleet.services.settings.body_timeout_s
    assert abs(config["server_time_ms"] - wall_ms()) < 60_000


async def test_unknown_route_and_bad_cursor(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    missing = await fleet.client.get("/v1/nothing", headers=PROTOCOL)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    bad = await fleet.client.get(
        "/v1/sync/pull", params={"cursor": "!!not-a-cursor"}, headers=dev.headers
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "cursor_invalid"
