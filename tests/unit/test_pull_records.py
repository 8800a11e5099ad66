"""A pull page builds its records by position (``pulling.ROW_RECORDS``): the bytes on the wire
are those of the wire records built by name, in MessagePack and in JSON."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from schemas.sync import PullResponse
from server import pulling
from server.store.pull import Run

_ID = uuid.UUID("0190c1d2-0000-7000-8000-000000000001")
SAMPLES: dict[str, list[Any]] = {
    "checkin": [
        _ID, "w1", "d1", "g1", 1_000, 15_400_000, 990, 15_399_990, 14_400_000, "device", 3,
        ["h1", "h2"], {"points": [[34.36, 107.23, 1_000]], "mock": False}, ["late"], None,
        _ID, "0000018f-0001-d1", "", 15_500_000,
    ],
    "note": [
        _ID, "h1", "g1", "w1", {"outcome": "met", "text": "独居老人，血压正常"},
        {"outcome": "0000018f-0001-d1"}, {"text": [{"value": "x", "clock": "c"}]}, False, "v3",
    ],
    "household": ["h1", "g1", "b1", "东风路12号 3单元 201室", "王建国", ["elderly"], "key"],
    "conflict": ["k1", _ID, "text", "concurrent", "旧值", "c1", "d2", None, None],
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_a_record_built_by_position_encodes_as_the_wire_record(kind: str) -> None:
    data = [*SAMPLES[kind], 7, 2]  # then txid, seq
    assert len(SAMPLES[kind]) == len(pulling.COLUMNS[kind])
    fields = pulling.COLUMNS[kind]
    named = pulling._RECORDS[kind](**dict(zip(fields, data, strict=False)))
    by_name = pulling._CHANGES[kind](seq=2, record=named)
    (by_position,) = pulling._changes([Run(kind, [data])])
    for encode in (msgspec.msgpack.encode, msgspec.json.encode):
        page = [encode(PullResponse(changes=[c], cursor="x", more=False, server_time_ms=1))
                for c in (by_name, by_position)]  # fmt: skip
        assert page[0] == page[1]
        assert encode(by_position.record) == encode(by_name.record)
