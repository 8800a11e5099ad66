"""The characters a pushed string may hold: one rule for every backend.

Invariants:

* identifiers and references — ``grid_id``, ``household_id``, ``households``, ``worker_id``,
  ``boot_id``, a note's ``tags`` and ``photos`` — hold no C0 control character
  (U+0000–U+001F) and no DEL (U+007F);
* free text — a note's ``text`` and ``needs``, an amendment's ``reason`` — holds no C0 control
  character other than tab, line feed and carriage return (DEL is allowed);
* clocks are checked where they are parsed (``sync.hlc``: printable ASCII only), ids of records
  are UUIDs, and strings the server ignores (unknown keys, ``base`` entries of fields not set)
  are not looked at;
* :func:`refused` names, for each refused item, the first field (in the order above) that
  breaks the rule; a batch whose strings are all clean costs two regular-expression searches
  over its joined strings, whatever its size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from schemas.sync import AmendOp, CheckinOp, NoteDeleteOp, NoteEditOp
from schemas.text import CONTROL, TEXT_CONTROL

ID_FORBIDDEN = re.compile(f"[{CONTROL}]")
TEXT_FORBIDDEN = re.compile(f"[{TEXT_CONTROL}]")


def _fields(item: object) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(identifier fields, free-text fields) of one item, as (name, value) pairs."""
    ids: list[tuple[str, str]] = []
    texts: list[tuple[str, str]] = []
    if isinstance(item, CheckinOp | AmendOp):
        ids.append(("grid_id", item.grid_id))
        ids.extend(("households", h) for h in item.households)
        if item.worker_id is not None:
            ids.append(("worker_id", item.worker_id))
        if item.boot_id is not None:
            ids.append(("boot_id", item.boot_id))
        if isinstance(item, AmendOp):
            texts.append(("reason", item.reason))
    elif isinstance(item, NoteEditOp):
        ids.append(("household_id", item.household_id))
        f = item.fields
        if isinstance(f.tags, list):
            ids.extend(("fields.tags", t) for t in f.tags)
        if isinstance(f.photos, list):
            ids.extend(("fields.photos", p) for p in f.photos)
        if isinstance(f.text, str):
            texts.append(("fields.text", f.text))
        if isinstance(f.needs, str):
            texts.append(("fields.needs", f.needs))
    elif isinstance(item, NoteDeleteOp):
        ids.append(("household_id", item.household_id))
    return ids, texts


def _clean(items: Sequence[object]) -> bool:
    """True when no item holds a forbidden character (the same fields as :func:`_fields`)."""
    ids: list[str] = []
    texts: list[str] = []
    add_id, add_ids, add_text = ids.append, ids.extend, texts.append
    for item in items:
        kind = type(item)
        if kind is CheckinOp or kind is AmendOp:
            op: CheckinOp = item  # type: ignore[assignment]
            add_id(op.grid_id)
            add_ids(op.households)
            if op.worker_id is not None:
                add_id(op.worker_id)
            if op.boot_id is not None:
                add_id(op.boot_id)
            if kind is AmendOp:
                add_text(item.reason)  # type: ignore[attr-defined]
        elif kind is NoteEditOp:
            note: NoteEditOp = item  # type: ignore[assignment]
            add_id(note.household_id)
            f = note.fields
            if isinstance(f.tags, list):
                add_ids(f.tags)
            if isinstance(f.photos, list):
                add_ids(f.photos)
            if isinstance(f.text, str):
                add_text(f.text)
            if isinstance(f.needs, str):
                add_text(f.needs)
        elif kind is NoteDeleteOp:
            add_id(item.household_id)  # type: ignore[attr-defined]
    return ID_FORBIDDEN.search("".join(ids)) is None and (
        TEXT_FORBIDDEN.search("".join(texts)) is None
    )


def refused(items: Sequence[object]) -> dict[int, str]:
    """For each item (by index) holding a forbidden character, a reason naming the field.

    Items that are not push operations (e.g. ones that failed to decode) are skipped.
    """
    if _clean(items):
        return {}
    found: dict[int, str] = {}
    for index, item in enumerate(items):
        ids, texts = _fields(item)
        for name, value in ids:
            if ID_FORBIDDEN.search(value):
                found[index] = f"{name} holds a control character (U+0000-U+001F or U+007F)"
                break
        else:
            for name, value in texts:
                if TEXT_FORBIDDEN.search(value):
                    found[index] = (
                        f"{name} holds a control character"
                        " (U+0000-U+001F other than tab, line feed, carriage return)"
                    )
                    break
    return found
