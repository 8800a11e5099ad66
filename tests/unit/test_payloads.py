"""Job payloads: what the relay queues is what the job reads, in this release's shape and the
list of lists that earlier releases queued."""

from __future__ import annotations

import msgspec
import pytest

from server.store.outbox import Request
from worker.payloads import Evaluate, Item, decode_evaluate, encode_evaluate

REQUESTS = [
    Request(id=7, kind="week", subject="w-wang", period="2026-W10", version=3),
    Request(id=9, kind="household", subject="h-1", period="", version=1),
]


def test_round_trip() -> None:
    job = Evaluate.of(REQUESTS)
    assert job.requests == (
        Item(id=7, version=3, kind="week", subject="w-wang", period="2026-W10"),
        Item(id=9, version=1, kind="household", subject="h-1", period=""),
    )
    encoded = encode_evaluate(job)
    assert isinstance(encoded, bytes)
    assert decode_evaluate(encoded) == job


def test_request_ids_ride_along_and_a_payload_without_them_is_read() -> None:
    asked = [REQUESTS[0]._replace(request_id="r-1"), REQUESTS[1]._replace(request_id="r-0")]
    job = decode_evaluate(encode_evaluate(Evaluate.of([*asked, REQUESTS[0]])))
    assert job.request_ids == ["r-0", "r-1"]
    before = msgspec.msgpack.encode(
        {"requests": [{"id": 7, "version": 3, "kind": "week", "subject": "w", "period": "p"}]}
    )
    old = decode_evaluate(before)
    assert old.requests[0].request_id is None and old.request_ids == []


def test_earlier_shape_is_read() -> None:
    legacy = [[r.id, r.version, r.kind, r.subject, r.period] for r in REQUESTS]
    assert decode_evaluate(legacy) == Evaluate.of(REQUESTS)


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc1",
        msgspec.msgpack.encode({"requests": [{"id": "7"}]}),
        [[7, 3, "week", "w-wang"]],
        [["7", 3, "week", "w-wang", "2026-W10"]],
        "evaluate",
        None,
    ],
)
def test_other_shapes_raise(bad: object) -> None:
    with pytest.raises(msgspec.MsgspecError):
        decode_evaluate(bad)
