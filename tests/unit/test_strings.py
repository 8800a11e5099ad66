"""Which characters a pushed string may hold: ids refuse every C0 control and DEL, free text
keeps tab, line feed and carriage return; the first bad field is named."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.sync import AmendOp, CheckinOp, NoteDeleteOp, NoteEditOp, NoteFields
from sync.strings import refused

CLOCK = "001796000000000-00000-dev-1"
ID = uuid.UUID(int=1)


def checkin(**fields: object) -> CheckinOp:
    base: dict[str, object] = {"id": ID, "grid_id": "g1", "started_ms": 0, "ended_ms": 0}
    return msgspec.convert({**base, **fields}, CheckinOp)


def note(**fields: object) -> NoteEditOp:
    return NoteEditOp(
        note_id=ID, household_id="h1", clock=CLOCK, fields=msgspec.convert(fields, NoteFields)
    )


CASES = [
    (checkin(grid_id="g\x00"), "grid_id"),
    (checkin(households=["h1", "h\x7f"]), "households"),
    (checkin(worker_id="w\n"), "worker_id"),
    (checkin(boot_id="\x1f"), "boot_id"),
    (
        AmendOp(
            id=ID, grid_id="g", started_ms=0, ended_ms=0, amends=ID, clock=CLOCK, reason="a\x0bb"
        ),
        "reason",
    ),
    (note(text="a\x00"), "fields.text"),
    (note(needs="\x08"), "fields.needs"),
    (note(tags=["ok", "a\tb"]), "fields.tags"),
    (note(photos=["\r"]), "fields.photos"),
    (NoteDeleteOp(note_id=ID, household_id="h\x00", clock=CLOCK), "household_id"),
    (checkin(grid_id="g\x00", boot_id="b\x00"), "grid_id"),
]


@pytest.mark.parametrize(("item", "field"), CASES, ids=[c[1] for c in CASES])
def test_the_first_bad_field_is_named(item: object, field: str) -> None:
    found = refused(["not an op", checkin(), item])
    assert list(found) == [2]
    assert found[2].startswith(f"{field} holds a control character")


def test_clean_items_and_allowed_characters() -> None:
    items = [
        checkin(households=["户-101", "😀"], boot_id="b", worker_id="w"),
        note(text="line\r\nnext\ttab\x7f", needs="", tags=[], photos=["p.jpg"]),
        NoteDeleteOp(note_id=ID, household_id="h", clock=CLOCK),
        "undecodable",
    ]
    assert refused(items) == {}


@given(st.text(), st.sampled_from(["text", "tags"]))
def test_any_text_is_refused_exactly_when_it_holds_a_forbidden_character(
    value: str, field: str
) -> None:
    allowed = {"\t", "\n", "\r"} if field == "text" else set()
    bad = any(
        (ord(c) < 0x20 and c not in allowed) or (c == "\x7f" and field == "tags") for c in value
    )
    item = note(text=value) if field == "text" else note(tags=[value])
    assert bool(refused([item])) == bad
