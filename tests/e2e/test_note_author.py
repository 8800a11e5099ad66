"""A note's author is the worker whose edit created it on the server; no later edit, whatever
its clock, moves the authorship."""

from __future__ import annotations

from tests.support import Fleet, new_id, pulled_note

HOUSEHOLD = "h-xh-101"


async def test_an_edit_with_a_clock_from_1970_does_not_take_the_authorship(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang", "dev-zhang")
    wang = await fleet.device("w-wang", "dev-wang")
    note_id = str(new_id())
    created = zhang.note(note_id, HOUSEHOLD, {"text": "王大爷血压偏高", "tags": ["elderly"]})
    assert (await zhang.push([created]))["results"][0]["status"] == "applied"
    forged = {
        "op": "note",
        "note_id": note_id,
        "household_id": HOUSEHOLD,
        "clock": "000000000000001-00000-dev-wang",
        "fields": {"tags": ["forged"]},
    }
    reply = await wang.push([forged])
    result = reply["results"][0]
    assert result["status"] == "merged", result  # it loses to zhang's later tags
    assert result["record"]["author_id"] == "w-zhang"
    for dev in (zhang, wang):
        note = await pulled_note(dev, note_id)
        assert note["author_id"] == "w-zhang"
        # The field merge is unchanged: zhang's later tags win over the 1970 edit.
        assert note["fields"]["tags"] == ["elderly"]


async def test_the_creator_stays_author_when_later_edits_win_every_field(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang", "dev-zhang")
    wang = await fleet.device("w-wang", "dev-wang")
    note_id = str(new_id())
    await zhang.push([zhang.note(note_id, HOUSEHOLD, {"text": "第一次走访"})])
    seen = await pulled_note(wang, note_id)
    wang.clock = zhang.clock
    edit = wang.note(note_id, HOUSEHOLD, {"text": "第二次走访"}, base=seen["clocks"])
    assert (await wang.push([edit]))["results"][0]["status"] == "applied"
    note = await pulled_note(zhang, note_id)
    assert note["fields"]["text"] == "第二次走访"
    assert note["author_id"] == "w-zhang"
