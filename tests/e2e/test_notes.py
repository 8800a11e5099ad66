"""Two devices edit one note offline; any push order converges and no edit is lost."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Device, Fleet, new_id, pulled_note

HOUSEHOLD = "h-xh-101"


async def _conflicts(dev: Device, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    changes, cursor = await dev.pull_all(cursor)
    return [c["record"] for c in changes if c["type"] == "conflict"], cursor


@pytest.mark.parametrize("a_first", [True, False], ids=["a-then-b", "b-then-a"])
async def test_concurrent_offline_edits_converge(fleet: Fleet, a_first: bool) -> None:
    zhang = await fleet.device("w-zhang", "dev-zhang")
    wang = await fleet.device("w-wang", "dev-wang")
    note_id = str(new_id())
    created = zhang.note(
        note_id,
        HOUSEHOLD,
        {"text": "独居老人王大爷，腿脚不便", "follow_up": False, "method": "in_person"},
    )
    assert (await zhang.push([created]))["results"][0]["status"] == "applied"
    seen = await pulled_note(wang, note_id)
    _, zhang_cursor = await zhang.pull_all()
    _, wang_cursor = await wang.pull_all()
    # Both go offline and edit the same fields; wang also sets a field zhang never touched.
    wang.clock = zhang.clock  # wang's app received zhang's clock with the pulled note
    wang.skew_ms = 50  # wang edits a moment later: its clock is the greater one
    edit_a = zhang.note(
        note_id,
        HOUSEHOLD,
        {"text": "王大爷需要代购降压药", "follow_up": True},
        base={"text": seen["clocks"]["text"], "follow_up": seen["clocks"]["follow_up"]},
    )
    edit_b = wang.note(
        note_id,
        HOUSEHOLD,
        {"text": "微心愿：希望楼道加装扶手", "follow_up": False, "needs": "楼道扶手"},
        base={"text": seen["clocks"]["text"], "follow_up": seen["clocks"]["follow_up"]},
    )
    order = [(zhang, edit_a), (wang, edit_b)] if a_first else [(wang, edit_b), (zhang, edit_a)]
    statuses = []
    for dev, item in order:
        statuses.append((await dev.push([item]))["results"][0]["status"])
    assert statuses[0] == "applied"
    assert statuses[1] == "merged"

    final = await pulled_note(zhang, note_id)
    assert final == await pulled_note(wang, note_id)
    # The later clock (wang's edit) wins each field ...
    assert final["fields"]["text"] == "微心愿：希望楼道加装扶手"
    assert final["fields"]["follow_up"] is False
    assert final["fields"]["needs"] == "楼道扶手"
    assert final["fields"]["method"] == "in_person"
    # ... and the other text stays reachable as an alternative.
    alternatives = final["alternatives"]["text"]
    assert [a["value"] for a in alternatives] == ["王大爷需要代购降压药"]
    # zhang lost two fields: its next pull says so; wang lost nothing.
    zhang_conflicts, _ = await _conflicts(zhang, zhang_cursor)
    assert sorted((c["field"], c["losing_value"]) for c in zhang_conflicts) == [
        ("follow_up", True),
        ("text", "王大爷需要代购降压药"),
    ]
    assert all(
        c["reason"] == "overridden" and c["losing_device_id"] == "dev-zhang"
        for c in zhang_conflicts
    )
    wang_conflicts, _ = await _conflicts(wang, wang_cursor)
    assert wang_conflicts == []


async def test_same_state_whatever_the_order(fleet: Fleet) -> None:
    """The same two concurrent edits, delivered in opposite orders to two notes: same state.

    Only the author differs: it is the worker whose edit created the note on the server."""
    zhang = await fleet.device("w-zhang", "dev-zhang")
    wang = await fleet.device("w-wang", "dev-wang")
    first, second = str(new_id()), str(new_id())
    a = zhang.note(first, HOUSEHOLD, {"text": "甲", "tags": ["elderly"]})
    b = wang.note(first, HOUSEHOLD, {"text": "乙", "follow_up": True})
    for dev, item in [
        (zhang, a),
        (wang, b),
        (wang, {**b, "note_id": second}),
        (zhang, {**a, "note_id": second}),
    ]:
        await dev.push([item])
    one, two = await pulled_note(zhang, first), await pulled_note(zhang, second)
    assert {k: v for k, v in one.items() if k not in {"id", "author_id"}} == {
        k: v for k, v in two.items() if k not in {"id", "author_id"}
    }
    assert (one["author_id"], two["author_id"]) == ("w-zhang", "w-wang")
    assert sorted([one["fields"]["text"], one["alternatives"]["text"][0]["value"]]) == ["乙", "甲"]


async def test_delete_is_a_tombstone_and_does_not_resurrect(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang", "dev-zhang")
    wang = await fleet.device("w-wang", "dev-wang")
    note_id = str(new_id())
    created = zhang.note(note_id, HOUSEHOLD, {"text": "临时记录"})
    await zhang.push([created])
    _, wang_cursor = await wang.pull_all()
    # The deleter saw its own edit (base = the note's version it knew).
    delete = {
        "op": "note_delete",
        "note_id": note_id,
        "household_id": HOUSEHOLD,
        "clock": zhang.tick(),
        "base": created["clock"],
    }
    assert (await zhang.push([delete]))["results"][0]["status"] == "applied"
    # wang edits offline without having seen the delete, then syncs.
    late = wang.note(note_id, HOUSEHOLD, {"text": "补充：已电话回访"})
    assert (await wang.push([late]))["results"][0]["status"] == "merged"
    changes, _ = await wang.pull_all(wang_cursor)
    note = next(c["record"] for c in changes if c["type"] == "note")
    assert note["deleted"] is True
    assert note["fields"] == {}
    lost = [c["record"] for c in changes if c["type"] == "conflict"]
    assert [(c["reason"], c["losing_value"]) for c in lost] == [("deleted", "补充：已电话回访")]


async def test_note_replay_is_duplicate(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang")
    item = zhang.note(new_id(), HOUSEHOLD, {"text": "入户走访"})
    assert (await zhang.push([item]))["results"][0]["status"] == "applied"
    assert (await zhang.push([item]))["results"][0]["status"] == "duplicate"
