"""Hostile push bodies: absurd clocks, deep nesting, control characters, non-finite numbers and
odd protocol headers get a 4xx or an item-level rejection, never a 500; a refused item writes
nothing and its good neighbours are applied, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from tests.support import HOUR, Device, Fleet, new_id

HOUSEHOLD = "h-xh-101"
TABLES = ("checkin", "note", "note_edit", "conflict", "push_receipt")


async def counts(fleet: Fleet) -> dict[str, int]:
    async with fleet.services.engine.connect() as conn:
        return {
            t: int((await conn.execute(sa.text(f"SELECT count(*) FROM {t}"))).scalar_one())
            for t in TABLES
        }


async def raw_push(dev: Device, content: bytes, content_type: str) -> Any:
    return await dev.fleet.client.post(
        "/v1/sync/push", content=content, headers={**dev.headers, "Content-Type": content_type}
    )


def envelope(dev: Device, items: list[Any], **extra: Any) -> dict[str, Any]:
    return {"push_id": str(new_id()), "device_time_ms": dev.now(), "items": items, **extra}


# ---------------------------------------------------------------- device_time_ms and skew


async def test_device_clock_far_ahead_keeps_todays_patrol_uncorrected(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    today = dev.checkin("xinhua-g1")
    good = dev.checkin("xinhua-g1", hours=1)
    body = envelope(dev, [today, good], device_time_ms=10**14)
    response = await fleet.post("/v1/sync/push", body, dev.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    assert {"clock_skew", "skew_uncorrected"} <= set(results[0]["flags"])
    changes, _ = await dev.pull_all()
    records = {c["record"]["id"]: c["record"] for c in changes if c["type"] == "checkin"}
    stored = records[today["id"]]
    assert (stored["started_ms"], stored["ended_ms"]) == (today["started_ms"], today["ended_ms"])
    assert stored["device_started_ms"] == today["started_ms"]


async def test_device_clock_at_zero_and_times_at_the_end_of_the_range(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    late = dev.checkin("xinhua-g1", started_ms=10**14 - HOUR, ended_ms=10**14, elapsed_ms=HOUR)
    epoch = dev.checkin("xinhua-g1", started_ms=0, ended_ms=0, elapsed_ms=0)
    reply = await dev.push([late, epoch], msgpack=True)  # device_time_ms = now
    assert [r["status"] for r in reply["results"]] == ["applied", "applied"]
    body = envelope(dev, [late, dev.checkin("xinhua-g1")], device_time_ms=0)
    response = await fleet.post("/v1/sync/push", body, dev.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["status"] == "duplicate"
    assert results[1]["status"] == "applied"
    assert "skew_uncorrected" not in results[1].get("flags", [])


async def test_amendment_with_absurd_skew_is_stored_uncorrected(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    first = dev.checkin("xinhua-g1")
    assert (await dev.push([first]))["results"][0]["status"] == "applied"
    amend = {**dev.checkin("xinhua-g1", hours=2), "op": "amend", "amends": first["id"]}
    amend["clock"] = dev.tick()
    body = envelope(dev, [amend], device_time_ms=10**14)
    response = await fleet.post("/v1/sync/push", body, dev.headers)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["status"] == "applied", result
    assert "skew_uncorrected" in result["flags"]


# ---------------------------------------------------------------- nesting


def _deep_json(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


async def test_deep_nesting_anywhere_is_a_malformed_body(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    good = msgspec.json.encode(dev.checkin("xinhua-g1"))
    head = b'{"push_id":"%s","device_time_ms":%d,' % (str(new_id()).encode(), dev.now())
    route = b'{"a":' * 5000 + b"1" + b"}" * 5000
    deep_item = good[:-1] + b',"route":' + route + b"}"
    bodies = {
        "unknown key": head + b'"items":[' + good + b'],"x":' + _deep_json(100_000) + b"}",
        "route of an item": head + b'"items":[' + good + b"," + deep_item + b"]}",
    }
    before = await counts(fleet)
    for name, body in bodies.items():
        response = await raw_push(dev, body, "application/json")
        assert response.status_code == 400, (name, response.text)
        error = response.json()["error"]
        assert error["code"] == "malformed_body", name
        assert error["details"] == {"max_nesting": 64}
    # MessagePack: {"push_id", "device_time_ms", "items": [[[...]]]} with items 3,000 deep
    pack = msgspec.msgpack.encode
    mp = (
        b"\x83"
        + pack("push_id")
        + pack(str(new_id()))
        + pack("device_time_ms")
        + pack(dev.now())
        + pack("items")
        + b"\x91" * 3000
        + b"\x90"
    )
    response = await raw_push(dev, mp, "application/msgpack")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_body"
    assert await counts(fleet) == before


async def test_nesting_within_the_limit_is_accepted(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    item = msgspec.json.encode(dev.checkin("xinhua-g1"))
    # the envelope (1) + "x" (62 arrays) + an object inside them: 64 levels
    deep = _deep_json(62, b'{"k":1}')
    body = b'{"push_id":"%s","device_time_ms":%d,"items":[%s],"x":%s}' % (
        str(new_id()).encode(),
        dev.now(),
        item,
        deep,
    )
    response = await raw_push(dev, body, "application/json")
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "applied"


# ---------------------------------------------------------------- control characters


def _bad_strings(dev: Device) -> dict[str, dict[str, Any]]:
    """One item per stored string field, each holding one refused character."""
    note = dev.note
    amend = {**dev.checkin("xinhua-g1"), "op": "amend", "amends": str(new_id())}
    amend.update(clock=dev.tick(), reason="bad\x00reason")
    return {
        "grid_id": dev.checkin("xinhua-g1\x00"),
        "households": dev.checkin("xinhua-g1", households=[HOUSEHOLD, "h\x00"]),
        "boot_id": dev.checkin("xinhua-g1", boot_id="boot\x00"),
        "worker_id": dev.checkin("xinhua-g1", worker_id="w-zhang\x00"),
        "reason": amend,
        "household_id": note(new_id(), HOUSEHOLD + "\x00", {"text": "x"}),
        "fields.text": note(new_id(), HOUSEHOLD, {"text": "门口\x00积水"}),
        "fields.needs": note(new_id(), HOUSEHOLD, {"needs": "\x00"}),
        "fields.tags": note(new_id(), HOUSEHOLD, {"tags": ["ok", "t\x00"]}),
        "fields.photos": note(new_id(), HOUSEHOLD, {"photos": ["p\x00.jpg"]}),
        "note_delete household_id": {
            "op": "note_delete",
            "note_id": str(new_id()),
            "household_id": "\x00",
            "clock": dev.tick(),
        },
    }


@pytest.mark.parametrize("msgpack", [False, True], ids=["json", "msgpack"])
async def test_nul_in_any_string_rejects_only_its_item(fleet: Fleet, msgpack: bool) -> None:
    dev = await fleet.device("w-zhang")
    bad = _bad_strings(dev)
    good_checkin = dev.checkin("xinhua-g1", households=[HOUSEHOLD])
    good_note = dev.note(new_id(), HOUSEHOLD, {"text": "tab\tline\nreturn\r del\x7f ok"})
    items = [good_checkin, *bad.values(), good_note]
    before = await counts(fleet)
    reply = await dev.push(items, msgpack=msgpack)
    results = reply["results"]
    assert results[0]["status"] == "applied"
    assert results[-1]["status"] == "applied"
    for (field, item), result in zip(bad.items(), results[1:-1], strict=True):
        assert result["status"] == "rejected", (field, result)
        assert result["code"] == "invalid_item", (field, result)
        assert result["reason"].startswith(field.split()[-1]), (field, result)
        assert result["id"] == item.get("id", item.get("note_id")), (field, result)
    after = await counts(fleet)
    assert after["checkin"] == before["checkin"] + 1
    assert after["note"] == before["note"] + 1
    assert after["note_edit"] == before["note_edit"] + 1


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"tags": ["a\nb"]}, False),
        ({"tags": ["a\n"]}, False),
        ({"photos": ["a\x7f"]}, False),
        ({"tags": ["a\x1f"]}, False),
        ({"text": "a\x0bb"}, False),
        ({"needs": "a\x1bb"}, False),
        ({"text": "line\r\nnext\ttab"}, True),
        ({"needs": "\x7f"}, True),
        ({"tags": ["中文", "emoji 😀"]}, True),
    ],
)
async def test_control_characters_in_ids_and_text(
    fleet: Fleet, fields: dict[str, Any], ok: bool
) -> None:
    dev = await fleet.device("w-zhang")
    reply = await dev.push([dev.note(new_id(), HOUSEHOLD, fields)])
    result = reply["results"][0]
    assert (result["status"] == "applied") is ok, result
    if not ok:
        assert result["code"] == "invalid_item"


async def test_json_escaped_nul_rejects_its_item_a_lone_surrogate_the_body(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    good = msgspec.json.encode(dev.checkin("xinhua-g1"))
    note = msgspec.json.encode(dev.note(new_id(), HOUSEHOLD, {"text": "a"}))

    def body(*items: bytes) -> bytes:
        head = b'{"push_id":"%s","device_time_ms":%d,"items":[' % (
            str(new_id()).encode(),
            dev.now(),
        )
        return head + b",".join(items) + b"]}"

    before = await counts(fleet)
    surrogate = note.replace(b'"a"', b'"\\ud800"')
    response = await raw_push(dev, body(good, surrogate), "application/json")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_body"
    assert await counts(fleet) == before
    nul = note.replace(b'"a"', b'"a\\u0000"')
    response = await raw_push(dev, body(good, nul), "application/json")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    assert results[1]["code"] == "invalid_item"
    assert results[1]["reason"].startswith("fields.text")


# ---------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize(
    "route",
    [
        {"max_speed_mps": float("inf")},
        {"max_speed_mps": float("-inf")},
        {"max_speed_mps": float("nan")},
        {"max_speed_mps": 1e20},
        {"distance_m": float("nan")},
        {"distance_m": float("inf")},
        {"inside_share": float("nan")},
    ],
    ids=repr,
)
async def test_non_finite_numbers_are_rejected(fleet: Fleet, route: dict[str, float]) -> None:
    dev = await fleet.device("w-zhang")
    good = dev.checkin("xinhua-g1", route={"max_speed_mps": 1e6, "distance_m": 10.5})
    reply = await dev.push([dev.checkin("xinhua-g1", route=route), good], msgpack=True)
    first, second = reply["results"]
    assert (first["status"], first["code"]) == ("rejected", "invalid_item"), first
    assert second["status"] == "applied"
    changes, _ = await dev.pull_all()
    (stored,) = [c["record"] for c in changes if c["type"] == "checkin"]
    assert stored["route"]["max_speed_mps"] == 1e6


async def test_json_number_beyond_float_range_is_rejected(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    item = msgspec.json.encode(dev.checkin("xinhua-g1", route={"max_speed_mps": 1.5}))
    item = item.replace(b"1.5", b"1e400")
    body = b'{"push_id":"%s","device_time_ms":%d,"items":[%s]}' % (
        str(new_id()).encode(),
        dev.now(),
        item,
    )
    response = await raw_push(dev, body, "application/json")
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["code"] == "invalid_item"


# ---------------------------------------------------------------- the protocol header


@pytest.mark.parametrize("value", ["+1", "01", " 1", "1 ", "\t1", "1.0", "1_0", "0x1", "١"])
async def test_protocol_header_is_ascii_digits_only(fleet: Fleet, value: str) -> None:
    dev = await fleet.device("w-zhang")
    headers = {**dev.headers, "Patrolsync-Protocol": value}
    before = await counts(fleet)
    response = await fleet.post(
        "/v1/sync/push", envelope(dev, [dev.checkin("xinhua-g1")]), _encoded(headers)
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "unsupported_protocol"
    pulled = await fleet.client.get("/v1/sync/pull", headers=_encoded(headers))
    assert pulled.status_code == 400
    assert await counts(fleet) == before
    ok = await fleet.client.get("/v1/sync/pull", headers=dev.headers)
    assert ok.status_code == 200


def _encoded(headers: dict[str, str]) -> Any:
    """Header values as UTF-8 bytes (httpx encodes str values as ASCII only)."""
    return {k: v.encode() for k, v in headers.items()}


# ---------------------------------------------------------------- many references in one item


async def test_a_checkin_naming_40000_households_is_rejected_not_a_500(fleet: Fleet) -> None:
    """More ids than a statement may bind (32767 on both backends) in one push."""
    dev = await fleet.device("w-zhang")
    many = dev.checkin("xinhua-g1", households=[HOUSEHOLD, *(f"h-{i}" for i in range(40_000))])
    reply = await dev.push([many, dev.checkin("xinhua-g1")], msgpack=True)
    first, second = reply["results"]
    assert (first["status"], first["code"]) == ("rejected", "unknown_household")
    assert second["status"] == "applied"
