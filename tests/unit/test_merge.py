"""Named edge cases of the field merge (the table the property tests stand beside)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from sync.hlc import HLC
from sync.merge import (
    DELETED,
    Conflict,
    EditError,
    FieldEdit,
    conflicts,
    key,
    merge,
    resolve,
    validate_edit,
)

T0 = 1_718_000_000_000
WORKERS = {"dev-a1": "w-zhang", "dev-b2": "w-li", "dev-c3": "w-wang"}


def clk(sec: int, node: str, counter: int = 0) -> str:
    return HLC(T0 + sec * 1000, counter, node).encode()


def ed(field_: str, value: Any, clock: str, base: str | None = None) -> FieldEdit:
    node = HLC.parse(clock).node
    return FieldEdit(field_, value, clock, base, node, WORKERS[node])


def delete(clock: str, base: str | None) -> FieldEdit:
    return ed(DELETED, True, clock, base)


A0, A1, A2 = clk(0, "dev-a1"), clk(60, "dev-a1"), clk(300, "dev-a1")
B1, B2 = clk(90, "dev-b2"), clk(400, "dev-b2")
C1 = clk(120, "dev-c3")
TIE_A, TIE_B = clk(60, "dev-a1", 2), clk(60, "dev-b2", 2)

CREATE = ed("text", "独居老人王大爷，腿脚不便", A0)
TEXT_A = ed("text", "独居老人王大爷，腿脚不便，需要代购药品", A1, A0)
TEXT_B = ed("text", "王大爷女儿每周来一次", B1, A0)
TEXT_C = ed("text", "王大爷血压偏高", C1, A0)


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[FieldEdit, ...]
    fields: dict[str, Any]
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field -> clocks
    conflicts: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    deleted: bool = False
    order_free: bool = True  # False when the input holds a divergent replay (first kept wins)


CASES = [
    Case(
        "same_clock_replay_different_value",
        (TEXT_A, ed("text", "被篡改的重放", A1, A0)),
        {"text": TEXT_A.value},
        order_free=False,
    ),
    Case(
        "tie_on_wall_and_counter_broken_by_node",
        (ed("follow_up", True, TIE_A), ed("follow_up", False, TIE_B)),
        {"follow_up": False},
        conflicts={("follow_up", TIE_A): ("overridden", TIE_B)},
    ),
    Case(
        "sequential_edit_knows_base",
        (CREATE, TEXT_A, ed("text", "王大爷已办理助餐卡", B1, A1)),
        {"text": "王大爷已办理助餐卡"},
    ),
    Case(
        "concurrent_text_edits_keep_alternative",
        (CREATE, TEXT_A, TEXT_B),
        {"text": TEXT_B.value},
        alternatives={"text": (A1,)},
        conflicts={("text", A1): ("overridden", B1)},
    ),
    Case(
        "three_concurrent_text_edits",
        (CREATE, TEXT_A, TEXT_B, TEXT_C),
        {"text": TEXT_C.value},
        alternatives={"text": (A1, B1)},
        conflicts={("text", A1): ("overridden", C1), ("text", B1): ("overridden", C1)},
    ),
    Case(
        "resolution_write_clears_alternatives",
        (CREATE, TEXT_A, TEXT_B, ed("text", "合并：需要代购药品；女儿每周来一次", A2, B1)),
        {"text": "合并：需要代购药品；女儿每周来一次"},
        conflicts={("text", A1): ("overridden", A2)},
    ),
    Case(
        "concurrent_non_text_field_is_lww",
        (ed("follow_up", True, A1), ed("follow_up", False, B1)),
        {"follow_up": False},
        conflicts={("follow_up", A1): ("overridden", B1)},
    ),
    Case(
        "different_fields_never_conflict",
        (CREATE, ed("needs", "微心愿：希望楼道加装扶手", A1, None), ed("follow_up", True, B1)),
        {"text": CREATE.value, "needs": "微心愿：希望楼道加装扶手", "follow_up": True},
    ),
    Case(
        "one_push_sets_two_fields_with_one_clock",
        (ed("text", "已上门", A1), ed("follow_up", True, A1)),
        {"text": "已上门", "follow_up": True},
    ),
    Case(
        "edit_after_delete_is_a_deleted_conflict",
        (CREATE, delete(A1, A0), TEXT_B),
        {},
        conflicts={("text", B1): ("deleted", A1)},
        deleted=True,
    ),
    Case(
        "edit_the_deleter_saw_is_no_conflict",
        (CREATE, TEXT_B, delete(A2, B1)),
        {},
        deleted=True,
    ),
    Case(
        "delete_replayed",
        (CREATE, delete(A1, A0), delete(A1, A0)),
        {},
        deleted=True,
    ),
    Case(
        "concurrent_deletes",
        (CREATE, delete(A1, A0), delete(B1, A0)),
        {},
        deleted=True,
    ),
    Case(
        "deleted_wins_over_overridden_as_reason",
        (CREATE, TEXT_A, TEXT_B, delete(clk(100, "dev-c3"), A0)),
        {},
        conflicts={
            ("text", A1): ("deleted", clk(100, "dev-c3")),
            ("text", B1): ("deleted", clk(100, "dev-c3")),
        },
        deleted=True,
    ),
    Case(
        # Known limitation: a delete's base is ONE clock over all fields, so an edit of another
        # field with an older clock that reached the server after the delete counts as seen.
        "delete_base_spans_fields",
        (CREATE, ed("follow_up", True, clk(30, "dev-c3")), TEXT_A, delete(A2, A1)),
        {},
        deleted=True,
    ),
]


def _conflict_table(cs: dict[tuple[str, str], Conflict]) -> dict[tuple[str, str], Any]:
    return {k: (c.reason, c.winner.clock if c.winner else None) for k, c in cs.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_edge_case(case: Case) -> None:
    orders = (
        [list(case.edits), list(reversed(case.edits))] if case.order_free else [list(case.edits)]
    )
    for order in orders:
        state = resolve(order)
        assert state.fields == case.fields
        assert {f: tuple(a.clock for a in alts) for f, alts in state.alternatives.items()} == (
            case.alternatives
        )
        assert state.deleted is case.deleted
        assert state.version == max(e.clock for e in case.edits)
        assert _conflict_table(conflicts(order)) == case.conflicts
        acc: list[FieldEdit] = []
        emitted: set[tuple[str, str]] = set()
        for e in order:
            r = merge(acc, [e])
            acc.extend(r.new_edits)
            emitted |= {c.key for c in r.new_conflicts}
        assert r.state == state
        assert emitted == set(case.conflicts)
        assert merge([], order).state == state


def test_divergent_replay_is_reported_and_ignored() -> None:
    replay = ed("text", "被篡改的重放", A1, A0)
    r = merge([TEXT_A], [replay])
    assert r.duplicate and r.new_conflicts == () and r.divergent_replays == (replay,)
    assert r.state.fields == {"text": TEXT_A.value}
    assert merge([TEXT_A], [TEXT_A]).divergent_replays == ()


def test_replayed_delete_is_duplicate() -> None:
    d = delete(A1, A0)
    r = merge([CREATE, d], [d, d])
    assert r.duplicate and r.state.deleted and r.state.deleted_clock == A1


def test_merge_outputs_are_ordered() -> None:
    r = merge([CREATE], [ed("follow_up", True, B1), TEXT_B, TEXT_A, TEXT_A, delete(A2, A0)])
    assert [key(e) for e in r.new_edits] == [
        ("text", A1),
        ("follow_up", B1),
        ("text", B1),
        (DELETED, A2),
    ]
    assert [c.key for c in r.new_conflicts] == [("follow_up", B1), ("text", A1), ("text", B1)]
    assert all(
        c.reason == "deleted" and c.winner is not None and c.winner.clock == A2
        for c in r.new_conflicts
    )
    assert r.state.fields == {} and r.state.version == A2 and not r.duplicate


def test_state_dicts_sorted_by_field() -> None:
    s = resolve([ed("text", "x", A1), ed("follow_up", True, A1), ed("needs", "y", B1)])
    assert list(s.fields) == ["follow_up", "needs", "text"] == list(s.clocks)


def test_empty() -> None:
    s = resolve([])
    assert (s.fields, s.deleted, s.version) == ({}, False, "")
    assert conflicts([]) == {}
    assert merge([], []).duplicate


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (FieldEdit("text", "x", A1, None, "dev-b2", "w-li"), "device id"),
        (FieldEdit("text", "x", A1, A1, "dev-a1", "w-zhang"), "not older"),
        (FieldEdit("text", "x", A1, B1, "dev-a1", "w-zhang"), "not older"),
        (FieldEdit("text", "x", "garbage", None, "dev-a1", "w-zhang"), "malformed"),
        (FieldEdit("text", "x", A1, "garbage", "dev-a1", "w-zhang"), "malformed"),
        (FieldEdit("Text", "x", A1, None, "dev-a1", "w-zhang"), "field"),
        (FieldEdit("_secret", "x", A1, None, "dev-a1", "w-zhang"), "field"),
        (FieldEdit(DELETED, False, A1, None, "dev-a1", "w-zhang"), "delete"),
        (FieldEdit("text", "x", A1, None, "dev-a1", ""), "worker"),
        (FieldEdit("text", float("nan"), A1, None, "dev-a1", "w-zhang"), "JSON"),
        (FieldEdit("tags", ("a",), A1, None, "dev-a1", "w-zhang"), "JSON"),
        (FieldEdit("tags", {1: "a"}, A1, None, "dev-a1", "w-zhang"), "JSON"),
    ],
)
def test_validate_edit_rejects(bad: FieldEdit, match: str) -> None:
    with pytest.raises(EditError, match=match):
        validate_edit(bad)
    with pytest.raises(EditError):
        merge([], [bad])


def test_validate_edit_accepts_json_values() -> None:
    validate_edit(FieldEdit("tags", ["独居", "低保"], A1, A0, "dev-a1", "w-zhang"))
    validate_edit(FieldEdit("photos", {"k": [1, 2.5, None, True]}, A1, None, "dev-a1", "w-z"))
