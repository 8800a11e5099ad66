"""A finished check-in is a fact; corrections are amendments that name it."""

from __future__ import annotations

from tests.support import HOUR, Fleet, new_id


async def test_amendment_names_its_checkin_and_history_stays(fleet: Fleet) -> None:
    dev = await fleet.device("w-zhang")
    original = dev.checkin("xinhua-g1", hours=4)
    await dev.push([original])
    amend = dev.checkin("xinhua-g1", hours=3)
    amend.update(op="amend", amends=original["id"], clock=dev.tick(), reason="提前结束，时长填错")
    # An amendment of the amendment, in the same push, keeps the same root.
    second = dev.checkin("xinhua-g1", hours=2.5)
    second.update(op="amend", amends=amend["id"], clock=dev.tick())
    reply = await dev.push([amend, second])
    assert [r["status"] for r in reply["results"]] == ["applied", "applied"]
    changes, _ = await dev.pull_all()
    records = {c["record"]["id"]: c["record"] for c in changes if c["type"] == "checkin"}
    assert records[original["id"]]["duration_ms"] == 4 * HOUR  # never overwritten
    assert records[amend["id"]]["amends"] == original["id"]
    assert records[second["id"]]["root_id"] == original["id"]
    assert records[second["id"]]["duration_ms"] == int(2.5 * HOUR)


async def test_amendment_of_unknown_or_foreign_checkin_rejected(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang")
    wang = await fleet.device("w-wang")
    theirs = wang.checkin("xinhua-g1")
    await wang.push([theirs])
    bogus = zhang.checkin("xinhua-g1")
    bogus.update(op="amend", amends=str(new_id()), clock=zhang.tick())
    foreign = zhang.checkin("xinhua-g1")
    foreign.update(op="amend", amends=theirs["id"], clock=zhang.tick())
    mine = zhang.checkin("xinhua-g1")
    await zhang.push([mine])
    bad_clock = zhang.checkin("xinhua-g1")
    bad_clock.update(op="amend", amends=mine["id"], clock="000001795430940773-00000-other")
    reply = await zhang.push([bogus, foreign, bad_clock])
    assert [r["code"] for r in reply["results"]] == [
        "unknown_checkin",
        "unknown_checkin",
        "invalid_clock",
    ]
