"""A property test of push bodies, JSON and MessagePack, on PostgreSQL.

Hypothesis builds pushes from valid items, mutates them (hostile strings: NUL, controls, lone
surrogates and bad UTF-8; huge integers; NaN and infinities; deep nesting; wrong types; unknown
keys and ops; missing fields) and mutates their envelopes and headers. Properties, per request:

* never a 5xx;
* a refused request (4xx) changes no row count (check-ins, notes, note edits, conflicts, push
  receipts);
* a 200 has one result per item, in order, and the counts grow by exactly what was applied: one
  check-in per applied check-in or amendment, one note edit per field of an applied or merged
  note item, one note per new note, conflicts only with a merge, one receipt (none when the push
  is a replay).

``PATROLSYNC_FUZZ_EXAMPLES`` sets the number of pushes (default 800: about 30 s on two cores);
the count of requests sent and of 5xx seen is printed at the end (``pytest -s``).
"""

from __future__ import annotations

import os
import struct
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.sync import NoteFields
from tests.support import HOUR, PROTOCOL, Device, Fleet, new_id

pytestmark = pytest.mark.postgres

EXAMPLES = int(os.environ.get("PATROLSYNC_FUZZ_EXAMPLES", "800"))
TABLES = ("checkin", "note", "note_edit", "conflict", "push_receipt")
NOTE_FIELDS = set(NoteFields.__struct_fields__)
SENT: Counter[str] = Counter()
"""Requests sent, by status class ("2xx", "4xx", "5xx"): printed when the test ends."""


# ---------------------------------------------------------------- values no encoder writes


@dataclass(frozen=True)
class Deep:
    """Arrays nested ``depth`` deep (encoded by hand: the encoders would recurse)."""

    depth: int


@dataclass(frozen=True)
class Raw:
    """Bytes written as they are: ``json`` in a JSON body, ``msgpack`` in a MessagePack one."""

    json: bytes
    msgpack: bytes


def _mp_str(data: bytes) -> bytes:
    """A MessagePack str header for ``data`` (which need not be valid UTF-8)."""
    n = len(data)
    if n < 32:
        return bytes([0xA0 | n]) + data
    return b"\xd9" + bytes([n]) + data if n < 256 else b"\xda" + struct.pack(">H", n) + data


RAWS = [
    Raw(b'"\\ud800"', _mp_str(b"\xed\xa0\x80")),  # a lone surrogate
    Raw(b'"a\\udfff b"', _mp_str(b"\xff\xfe")),  # a lone low surrogate; invalid UTF-8
    Raw(b'"a\x01b"', _mp_str(b"a\x01b")),  # a raw control character (invalid in JSON)
    Raw(b'"\\u0000"', _mp_str(b"\x00")),
    Raw(b"1e400", b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00"),  # out of range / +inf
    Raw(b"-0", b"\xcb\x80\x00\x00\x00\x00\x00\x00\x00"),  # minus zero
    Raw(b"NaN", b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"),
    Raw(b"1" * 400, b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),  # huge / uint64 max
    Raw(b"[1,", b"\xdc\xff\xff"),  # truncated
    Raw(b'{"a":1,"a":2}', b"\x82\xa1a\x01\xa1a\x02"),  # duplicate keys
    Raw(b"\x00", b"\xc1"),  # not a value at all
    Raw(b'"\\u00e9\xf0\x9f\x98\x80"', _mp_str("é😀".encode())),
]


def encode_json(v: Any) -> bytes:
    if isinstance(v, Deep):
        return b"[" * v.depth + b"]" * v.depth
    if isinstance(v, Raw):
        return v.json
    if isinstance(v, dict):
        return (
            b"{"
            + b",".join(encode_json(str(k)) + b":" + encode_json(x) for k, x in v.items())
            + b"}"
        )
    if isinstance(v, list):
        return b"[" + b",".join(encode_json(x) for x in v) + b"]"
    if isinstance(v, float) and v != v:
        return b"NaN"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return b"1e999" if v > 0 else b"-1e999"
    if isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v):
        return b'"' + "".join(f"\\u{ord(c):04x}" for c in v).encode() + b'"'
    return msgspec.json.encode(v)


def _mp_container(n: int, small: int, codes: tuple[bytes, bytes]) -> bytes:
    if n < 16:
        return bytes([small | n])
    return codes[0] + struct.pack(">H", n) if n < 65536 else codes[1] + struct.pack(">I", n)


def encode_msgpack(v: Any) -> bytes:
    if isinstance(v, Deep):
        return b"\x91" * v.depth + b"\x90"
    if isinstance(v, Raw):
        return v.msgpack
    if isinstance(v, dict):
        head = _mp_container(len(v), 0x80, (b"\xde", b"\xdf"))
        return head + b"".join(encode_msgpack(str(k)) + encode_msgpack(x) for k, x in v.items())
    if isinstance(v, list):
        head = _mp_container(len(v), 0x90, (b"\xdc", b"\xdd"))
        return head + b"".join(encode_msgpack(x) for x in v)
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64:
        return b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"
    if isinstance(v, str):
        return _mp_str(v.encode("utf-8", "surrogatepass"))
    return msgspec.msgpack.encode(v)


# ---------------------------------------------------------------- strategies

strings = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec=None, categories=["Cc", "Cs", "Co", "Zl", "Zp"]), max_size=4),
    st.sampled_from(
        ["", "\x00", "a\x00b", "\x1f", "\x7f", "\n", "a\n", "\t", "\u2028", "\ufeff", "x" * 65]
    ),
    st.sampled_from(["xinhua-g1", "xinhua-g2", "qunzhong-g1", "h-xh-101", "h-qz-101", "w-li"]),
)
numbers = st.one_of(
    st.integers(),
    st.integers(-(2**64), 2**65),
    st.sampled_from([0, -1, 10**14, 10**14 + 1, 2**63 - 1, 2**63, 2**64 - 1, 10**30]),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 0.5]),
)
scalars = st.one_of(strings, numbers, st.booleans(), st.none())
hostile = st.one_of(
    scalars,
    st.builds(Deep, st.one_of(st.integers(1, 80), st.integers(500, 3000))),
    st.sampled_from(RAWS),
    st.lists(scalars, max_size=3),
    st.dictionaries(strings, scalars, max_size=3),
)


@dataclass
class World:
    """What the pushes so far left behind: ids to reuse, push ids committed, notes created."""

    fleet: Fleet
    devices: list[Device]
    checkins: list[str]
    notes: set[str]
    households: dict[str, str]
    committed: set[tuple[str, str]]
    """(device id, push id) of every push committed: a receipt is per device."""
    failed_ids: list[str]


WORLDS: dict[int, World] = {}


async def world(fleet: Fleet) -> World:
    if id(fleet) not in WORLDS:
        WORLDS.clear()
        devices = [await fleet.device("w-zhang"), await fleet.device("w-wang")]
        WORLDS[id(fleet)] = World(fleet, devices, [], set(), {}, set(), [])
    return WORLDS[id(fleet)]


def _one_of(draw: Any, pool: list[str] | set[str], fresh: Any) -> Any:
    """An id from ``pool`` (earlier pushes) or ``fresh``; the draws never depend on the pool, so
    that Hypothesis can replay an example whatever the world holds by then."""
    reuse, index = draw(st.booleans()), draw(st.integers(0, 2**16))
    ordered = sorted(pool)
    return ordered[index % len(ordered)] if reuse and ordered else fresh


@st.composite
def items(draw: Any, w: World, dev: Device) -> dict[str, Any]:
    op = draw(st.sampled_from(["checkin", "checkin", "amend", "note", "note", "note_delete"]))
    grid = draw(st.sampled_from(["xinhua-g1", "xinhua-g1", "xinhua-g2", "qunzhong-g1", "nowhere"]))
    household = draw(st.sampled_from(["h-xh-101", "h-xh-102", "h-xh-201", "h-xh-301", "h-qz-101"]))
    if op in ("checkin", "amend"):
        hours = draw(st.floats(0, 26))
        item = dev.checkin(
            grid,
            hours=hours,
            ended_ago_ms=draw(st.integers(-HOUR, 48 * HOUR)),
            elapsed_ms=draw(st.sampled_from(["same", None, int(hours * HOUR) + 60_000])),
        )
        if draw(st.booleans()):
            item["households"] = draw(st.lists(st.just(household), max_size=2))
        if draw(st.booleans()):
            item["route"] = {
                "points": draw(st.integers(0, 500)),
                "distance_m": draw(st.floats(0, 1e6)),
                "max_speed_mps": draw(st.floats(0, 100)),
                "mock_location": draw(st.booleans()),
            }
        if op == "amend":
            item.update(
                op="amend", amends=_one_of(draw, w.checkins, str(new_id())), clock=dev.tick()
            )
            item["reason"] = draw(st.sampled_from(["", "时间记错", "typo\n"]))
        return item
    note_id = _one_of(draw, w.notes, str(new_id()))
    if op == "note_delete":
        return {
            "op": "note_delete",
            "note_id": note_id,
            "household_id": w.households.get(note_id, household),
            "clock": dev.tick(),
        }
    fields = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "text": st.text(max_size=30),
                "needs": st.sampled_from(["", "轮椅", "药品\n"]),
                "tags": st.lists(st.sampled_from(["elderly", "alone"]), max_size=2),
                "photos": st.lists(st.just("p1.jpg"), max_size=1),
                "follow_up": st.booleans(),
                "method": st.sampled_from(["in_person", "phone", "video"]),
                "outcome": st.sampled_from(["met", "not_home", "refused"]),
                "visited_ms": st.integers(0, 10**14),
            },
        )
    )
    return dev.note(note_id, w.households.get(note_id, household), fields)


def _path_mutate(draw: Any, value: Any, depth: int = 0) -> Any:
    """Replace, drop or add one key somewhere in ``value`` (a dict or list)."""
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["replace", "drop", "add", "descend"]))
        copy = dict(value)
        if action == "replace":
            copy[key] = draw(hostile)
        elif action == "drop":
            del copy[key]
        elif action == "add":
            copy[draw(strings)] = draw(hostile)
        elif isinstance(copy[key], dict | list) and depth < 3:
            copy[key] = _path_mutate(draw, copy[key], depth + 1)
        else:
            copy[key] = draw(hostile)
        return copy
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], draw(hostile), *value[i + 1 :]]
    return draw(hostile)


@st.composite
def pushes(draw: Any, w: World) -> tuple[Device, Any, dict[str, Any], list[Any] | None]:
    """(device, body value, headers, the items list as sent or None)."""
    dev = draw(st.sampled_from(w.devices))
    batch: list[Any] = []
    for _ in range(draw(st.integers(0, 6))):
        item = draw(items(w, dev))
        if draw(st.integers(0, 2)) == 0:
            item = _path_mutate(draw, item)
        batch.append(item)
    if batch and draw(st.integers(0, 5)) == 0:
        batch.append(draw(st.sampled_from(batch)))  # the same item twice
    if draw(st.integers(0, 8)) == 0:
        batch.append(draw(hostile))  # an item that is not an object
    body: dict[str, Any] = {
        "push_id": _one_of(draw, {p for _, p in w.committed} | set(w.failed_ids), str(new_id())),
        "device_time_ms": draw(
            st.one_of(
                st.just(dev.now()),
                st.just(dev.now() + draw(st.integers(-30 * HOUR, 30 * HOUR))),
                st.sampled_from([0, 1, 10**14, 10**14 + 1, -1]),
            )
        ),
        "items": batch,
    }
    if draw(st.booleans()):
        body["complete"] = draw(st.booleans())
    value: Any = body
    if draw(st.integers(0, 5)) == 0:
        value = _path_mutate(draw, body)
    headers = dict(dev.headers)
    if draw(st.integers(0, 12)) == 0:
        headers[next(iter(PROTOCOL))] = draw(st.sampled_from(["2", "+1", "01", "", "1, 1"]))
    sent = value["items"] if isinstance(value, dict) and value.get("items") is batch else None
    return dev, value, headers, sent


# ---------------------------------------------------------------- the property


async def counts(fleet: Fleet) -> dict[str, int]:
    sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
    async with fleet.services.engine.connect() as conn:
        row = (await conn.execute(sa.text(sql))).one()
    return dict(zip(TABLES, (int(n) for n in row), strict=True))


def expected_growth(w: World, sent: list[Any], reply: dict[str, Any]) -> dict[str, Any]:
    results = reply["results"]
    assert [r["index"] for r in results] == list(range(len(sent)))
    growth = {"checkin": 0, "note": 0, "note_edit": 0, "conflict": 0, "push_receipt": 1}
    new_notes: set[str] = set()
    merged = False
    for item, result in zip(sent, results, strict=True):
        status = result["status"]
        assert status in ("applied", "duplicate", "merged", "rejected"), result
        if status == "rejected":
            assert result["code"] and result["reason"], result
        if status not in ("applied", "merged"):
            continue
        op = item["op"]
        if op in ("checkin", "amend"):
            assert status == "applied"
            growth["checkin"] += 1
            w.checkins.append(item["id"])
            continue
        merged = merged or status == "merged"
        if item["note_id"] not in w.notes:
            new_notes.add(item["note_id"])
            w.households[item["note_id"]] = item["household_id"]
        growth["note_edit"] += 1 if op == "note_delete" else len(NOTE_FIELDS & set(item["fields"]))
    growth["note"] = len(new_notes)
    w.notes |= new_notes
    if merged:
        growth["conflict"] = None  # any number: a merge may record conflicts
    return growth


@pytest.mark.timeout(120 + EXAMPLES // 10)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(data=st.data(), msgpack=st.booleans())
async def test_hostile_pushes_never_5xx_nor_half_written(
    pg_fleet: Fleet, data: st.DataObject, msgpack: bool
) -> None:
    w = await world(pg_fleet)
    dev, value, headers, sent = data.draw(pushes(w))
    if msgpack:
        content, headers["Content-Type"] = encode_msgpack(value), "application/msgpack"
    else:
        content = encode_json(value)
        headers["Content-Type"] = data.draw(
            st.sampled_from(["application/json", "application/json; charset=utf-8"])
        )
    before = await counts(pg_fleet)
    response = await pg_fleet.client.post("/v1/sync/push", content=content, headers=headers)
    SENT[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, response.text
    after = await counts(pg_fleet)
    if response.status_code != 200:
        assert after == before, response.text
        if isinstance(value, dict) and isinstance(value.get("push_id"), str):
            w.failed_ids.append(value["push_id"])
        return
    reply = response.json()
    receipt = (dev.device_id, value["push_id"])
    if reply["replayed"]:  # the stored results of an earlier push with this id: nothing new
        assert receipt in w.committed
        assert after == before
        return
    assert receipt not in w.committed
    w.committed.add(receipt)
    if sent is None:  # a mutated envelope that still decoded: only its receipt is known
        assert after["push_receipt"] - before["push_receipt"] == 1
        return
    assert len(reply["results"]) == len(sent)
    growth = expected_growth(w, sent, reply)
    for table, grew in growth.items():
        if grew is None:
            assert after[table] >= before[table]
        else:
            assert after[table] - before[table] == grew, (table, reply)


async def test_what_the_fuzzer_stored_pulls_back_in_both_formats(pg_fleet: Fleet) -> None:
    """Runs after the property (same module, file order): its fleet is a fresh one, so this
    pushes a sample of accepted oddities itself and pulls them in JSON and MessagePack."""
    dev = await pg_fleet.device("w-zhang")
    odd = [
        dev.checkin("xinhua-g1", route={"max_speed_mps": 1e6, "distance_m": 1e6}),
        dev.checkin("xinhua-g1", started_ms=0, ended_ms=0, elapsed_ms=0),
        dev.note(uuid.uuid4(), "h-xh-101", {"text": "\t\r\n\x7f😀", "visited_ms": 10**14}),
    ]
    reply = await dev.push(odd, msgpack=True)
    assert [r["status"] for r in reply["results"]] == ["applied"] * 3
    for accept in ("application/json", "application/msgpack"):
        response = await pg_fleet.client.get(
            "/v1/sync/pull", headers={**dev.headers, "Accept": accept}
        )
        SENT[f"{response.status_code // 100}xx"] += 1
        assert response.status_code == 200, response.text
    total = sum(SENT.values())
    print(f"\npush fuzz: {total} requests tried, {SENT['5xx']} 5xx seen ({dict(SENT)})")
    assert SENT["5xx"] == 0
