"""The published test vectors (docs/vectors/*.json) hold for this implementation.

Merge cases are applied through merge() one edit at a time in the listed order, in reverse
order and in every rotation (unless the case is marked "ordered"), and all at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sync.hlc import HLC, HLCError, receive, tick
from sync.merge import FieldEdit, MergeResult, NoteState, conflicts, merge

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors"
MERGE = json.loads((VECTORS / "merge.json").read_text(encoding="utf-8"))
CLOCKS = json.loads((VECTORS / "hlc.json").read_text(encoding="utf-8"))
EDIT_KEYS = {"field", "value", "clock", "base", "device_id", "worker_id"}


def edit_from_json(obj: dict[str, Any]) -> FieldEdit:
    assert set(obj) == EDIT_KEYS
    return FieldEdit(
        obj["field"], obj["value"], obj["clock"], obj["base"], obj["device_id"], obj["worker_id"]
    )


def state_to_json(s: NoteState) -> dict[str, Any]:
    return {
        "fields": s.fields,
        "clocks": s.clocks,
        "alternatives": {
            f: [
                {
                    "value": a.value,
                    "clock": a.clock,
                    "device_id": a.device_id,
                    "worker_id": a.worker_id,
                }
                for a in alts
            ]
            for f, alts in s.alternatives.items()
        },
        "deleted": s.deleted,
        "deleted_clock": s.deleted_clock,
        "version": s.version,
    }


def _orders(edits: list[FieldEdit], ordered: bool) -> list[list[FieldEdit]]:
    if ordered:
        return [edits]
    rotations = [edits[i:] + edits[:i] for i in range(len(edits))]
    return [edits, edits[::-1], *rotations]


def test_merge_vectors_format() -> None:
    assert MERGE["format"] == 1
    assert 10 <= len(MERGE["cases"]) <= 20
    assert len({c["name"] for c in MERGE["cases"]}) == len(MERGE["cases"])


@pytest.mark.parametrize("case", MERGE["cases"], ids=[c["name"] for c in MERGE["cases"]])
def test_merge_vector(case: dict[str, Any]) -> None:
    edits = [edit_from_json(e) for e in case["edits"]]
    expect = case["expect"]
    expected_conflicts = [(c["field"], c["loser_clock"]) for c in expect["conflicts"]]
    for order in _orders(edits, case.get("ordered", False)):
        stored: list[FieldEdit] = []
        emitted: list[tuple[str, str]] = []
        result: MergeResult | None = None
        for e in order:
            result = merge(stored, [e])
            stored.extend(result.new_edits)
            emitted.extend(c.key for c in result.new_conflicts)
        assert result is not None
        state = state_to_json(result.state)
        assert state == {k: v for k, v in expect.items() if k != "conflicts"}
        assert list(state["fields"]) == sorted(state["fields"])
        assert sorted(emitted) == expected_conflicts
        got = [
            {
                "field": c.field,
                "loser_clock": c.loser.clock,
                "winner_clock": c.winner.clock if c.winner else None,
                "reason": c.reason,
            }
            for c in conflicts(stored).values()
        ]
        assert got == expect["conflicts"]
        assert state_to_json(merge([], order).state) == state


def _clock(s: str | None) -> HLC | None:
    return None if s is None else HLC.parse(s)


@pytest.mark.parametrize("case", CLOCKS["tick"])
def test_tick_vector(case: dict[str, Any]) -> None:
    if case["expect"] == "error":
        with pytest.raises(HLCError):
            tick(_clock(case["local"]), case["now_ms"], case["node"])
    else:
        assert tick(_clock(case["local"]), case["now_ms"], case["node"]).encode() == case["expect"]


@pytest.mark.parametrize("case", CLOCKS["receive"])
def test_receive_vector(case: dict[str, Any]) -> None:
    remote = HLC.parse(case["remote"])
    if case["expect"] == "error":
        with pytest.raises(HLCError):
            receive(_clock(case["local"]), remote, case["now_ms"], case["node"])
    else:
        got = receive(_clock(case["local"]), remote, case["now_ms"], case["node"])
        assert got.encode() == case["expect"]


def test_parse_vectors() -> None:
    for case in CLOCKS["parse_valid"]:
        assert HLC.parse(case["clock"]) == HLC(case["wall_ms"], case["counter"], case["node"])
    for bad in CLOCKS["parse_invalid"]:
        with pytest.raises(HLCError):
            HLC.parse(bad)


def test_order_vector() -> None:
    order = CLOCKS["order"]
    assert order == sorted(order)
    parsed = [HLC.parse(s) for s in order]
    assert parsed == sorted(parsed)
    assert len(set(order)) == len(order)
