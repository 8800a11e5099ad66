"""Push and pull through the HTTP app, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from server.store import push as push_store
from server.store.pg import push as push_pg
from tests.support import HOUR, Fleet, new_id


async def test_push_applies_then_replay_returns_same_results(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    items = [dev.checkin("xinhua-g1"), dev.checkin("xinhua-g1", hours=2)]
    push_id = new_id()
    first = await dev.push(items, push_id=push_id)
    assert [r["status"] for r in first["results"]] == ["applied", "applied"]
    again = await dev.push(items, push_id=push_id)
    assert again["results"] == first["results"]
    assert again["replayed"] is True
    # The same items in a new push: duplicates, nothing new.
    other = await dev.push(items)
    assert [r["status"] for r in other["results"]] == ["duplicate", "duplicate"]
    changes, _ = await dev.pull_all()
    checkins = [c for c in changes if c["type"] == "checkin"]
    assert sorted(c["record"]["id"] for c in checkins) == sorted(i["id"] for i in items)


async def test_msgpack_round_trip(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    reply = await dev.push([dev.checkin("xinhua-g1")], msgpack=True)
    assert reply["results"][0]["status"] == "applied"


async def test_clock_cannot_stretch_a_patrol(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    # The wall clock says 4 hours, the monotonic clock says 2.
    item = dev.checkin("xinhua-g1", hours=4, elapsed_ms=2 * HOUR)
    reply = await dev.push([item])
    assert reply["results"][0]["status"] == "applied"
    assert "wall_clock_mismatch" in reply["results"][0]["flags"]
    changes, _ = await dev.pull_all()
    record = next(c["record"] for c in changes if c["type"] == "checkin")
    assert record["duration_ms"] == 2 * HOUR
    assert record["duration_source"] == "monotonic"


async def test_a_large_batch_is_answered_item_by_item_as_a_small_one(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a batch of ``REFUSING_FROM`` check-ins or more is copied in without its own
    ids looked up (only the check-ins it amends are); when one of them was stored already, the
    ``COPY`` refuses it and the push runs again with every id looked up. Either way each item is
    answered as in a small batch: stored ones duplicate, another worker's id rejected, the rest
    applied once; nothing of the first attempt is kept."""
    zhang = await fleet.device("w-zhang")
    wang = await fleet.device("w-wang")
    theirs = wang.checkin("xinhua-g1")
    await wang.push([theirs])
    stored = [zhang.checkin("xinhua-g1") for _ in range(3)]
    await zhang.push(stored)
    amend = zhang.checkin("xinhua-g1", hours=3)
    amend.update(op="amend", amends=stored[0]["id"], clock=zhang.tick(), reason="时长填错")
    new = [zhang.checkin("xinhua-g1") for _ in range(push_pg.COPY_FROM + 20)]
    items = [*new[:50], stored[1], {**theirs}, amend, new[0], *new[50:], stored[2]]
    asked: list[int] = []
    lookup = push_store.checkins_by_id

    async def counting(conn: Any, ids: Any) -> Any:
        ids = list(ids)
        asked.append(len(ids))
        return await lookup(conn, ids)

    monkeypatch.setattr(push_store, "checkins_by_id", counting)
    reply = await zhang.push(items)
    answers = [(r["status"], r.get("code")) for r in reply["results"]]
    assert answers == [
        *[("applied", None)] * 50,
        ("duplicate", None),
        ("rejected", "id_reused"),
        ("applied", None),
        ("duplicate", None),  # the same id twice in one batch
        *[("applied", None)] * (len(new) - 50),
        ("duplicate", None),
    ]
    if fleet.services.engine.dialect.name == "postgresql":
        assert asked == [1, len(items) + 1]  # the amended check-in only; then, rerun, all
    else:
        assert asked == [len(items) + 1]
    async with fleet.services.engine.connect() as conn:
        mine = await conn.execute(
            sa.text("SELECT count(*) FROM checkin WHERE worker_id = 'w-zhang'")
        )
        assert mine.scalar_one() == len(stored) + len(new) + 1
    # Resent under a new push id, the whole batch is duplicates (or rejected as before).
    again = await zhang.push(items)
    assert [r["status"] for r in again["results"]].count("applied") == 0
