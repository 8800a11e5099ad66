"""Push and pull through the HTTP app, on SQLite and PostgreSQL."""

from __future__ import annotations

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
