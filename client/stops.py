"""Playing a :class:`~client.scenario.Scenario` through a :class:`~client.simulate.Fleet`, one
stop at a time, over HTTP only: the phones record what happened since their last sync and sync
it; the supervisors acknowledge and resolve quota misses; a supervisor changes a unit setting.

A phone records a patrol when it ends, with its own wall clock (skewed, and a day or more ahead
for the future-event incident) and its monotonic duration; a wrong recording is amended at the
phone's first sync a day after the recording reached the server; a visit note is written at the
visit (the phone's clock says so) with a follow-up when it has needs, closed at the phone's
first sync a planned time after the visit. Each item is recorded once, whatever the faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from client.scenario import CHANGED_SETTING, PhonePlan, Scenario, supervisor_decision
from client.simulate import Fleet, Result, told

PAGE = 500


class Played:
    """What each phone has recorded so far (patrol key → check-in id, and when it synced)."""

    def __init__(self) -> None:
        self.checkins: dict[str, tuple[str, int]] = {}
        self.notes: set[tuple[str, str]] = set()
        """(worker, note id) the phone wrote up"""
        self.closed: set[tuple[str, str]] = set()


async def play_stop(
    fleet: Fleet,
    scenario: Scenario,
    played: Played,
    t: int,
    progress: Callable[[int], Awaitable[None] | None] | None = None,
) -> Result:
    """The phones due at the stop ``t`` record and sync; at the first stop every phone is
    handed out (enrolled) instead."""
    enrol = t == scenario.stops[0].at_ms
    due = [p for p in scenario.phones.values() if enrol or t in p.syncs]
    result = Result(phones=len(due))

    async def one(phone: PhonePlan) -> None:
        async with fleet.gate:
            handset = await fleet.handset(phone.worker_id)
            handset.skew_ms = phone.skew_ms
            if not enrol:
                handset.faults.rate = fleet.fault_rate
                _record(handset, phone, played, t, result)
                await handset.sync(result)
            await told(progress)

    await asyncio.gather(*(one(p) for p in due))
    return result


def _record(handset: Any, phone: PhonePlan, played: Played, t: int, result: Result) -> None:
    """What the phone recorded since its last sync, then what its worker does now.

    In that order: the past visits' notes are written at their visit, so their clocks (and a
    follow-up's opening moment) are the visit's; an edit made now (closing a follow-up, an
    amendment) ticks the phone's clock to now, and every edit after it would carry a clock at
    least as late."""
    device = handset.device
    skew = phone.skew_ms
    for p in phone.patrols:
        if p.key not in played.checkins and p.end_ms <= t:
            at = p.start_ms + skew + p.ahead_ms
            rid = device.record_checkin(
                p.grid_id,
                at,
                at + p.elapsed_ms,
                elapsed_ms=p.elapsed_ms,
                route=p.route,
                boot_id=phone.boot_of(p),
                visit_count=2,
            )
            played.checkins[p.key] = (rid, t)
            result.checkins += 1
    for v in phone.visits:
        mine = (phone.worker_id, v.note_id)
        if mine not in played.notes and v.when_ms <= t:
            fields: dict[str, Any] = {
                "visited_ms": v.when_ms,
                "method": "in_person",
                "outcome": v.outcome,
                "text": v.text,
            }
            if v.needs:
                fields |= {"needs": v.needs, "follow_up": True}
            handset.acting[:] = [v.when_ms]  # written at the visit, synced later
            device.edit_note(v.household, fields, note_id=v.note_id)
            handset.acting.clear()
            played.notes.add(mine)
            result.notes += 1
    for v in phone.visits:
        mine = (phone.worker_id, v.note_id)
        closing = v.close_after_ms
        due = closing is not None and phone.sync_after(v.when_ms + closing) == t
        if due and mine not in played.closed:
            device.edit_note(v.household, {"follow_up": False}, note_id=v.note_id)
            played.closed.add(mine)
    for p in phone.patrols:
        known = played.checkins.get(p.key)
        if known is not None and known[1] < t and phone.amended_at(p, known[1]) == t:
            assert p.amend_ms is not None
            at = p.start_ms + skew
            late = p.elapsed_ms > p.amend_ms
            reason = "巡查结束时忘记停止计时" if late else "计时被提前结束"
            device.amend(
                known[0],
                p.grid_id,
                at,
                at + p.amend_ms,
                reason=reason + "，按实际时长更正",
                elapsed_ms=p.amend_ms,
                route=p.route,
                boot_id=phone.boot_of(p),
                visit_count=2,
            )
            result.amendments += 1


async def alerts(http: httpx.AsyncClient, **query: str) -> list[dict[str, Any]]:
    """Every alert of the caller's subtree matching ``query``, all pages."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": PAGE, **query}
    while True:
        reply = await http.get("/v1/alerts", params=params)
        reply.raise_for_status()
        page = reply.json()
        found += page["alerts"]
        if not page.get("cursor"):
            return found
        params["cursor"] = page["cursor"]


async def supervise(http: httpx.AsyncClient) -> tuple[int, int]:
    """The supervisors look at the live quota misses and act on them as
    :func:`~client.scenario.supervisor_decision` says; returns (acknowledged, resolved)."""
    acked = resolved = 0
    for a in await alerts(http, rule="quota_missed", status="open,acknowledged"):
        decision = supervisor_decision(a["rule"], a["subject_id"], a["period"])
        if decision == "resolve":
            note = {"note": "已核实：该周请假，经社区批准"}
            reply = await http.post(f"/v1/alerts/{a['id']}/resolve", json=note)
            reply.raise_for_status()
            resolved += 1
        elif decision == "ack" and a["status"] == "open":
            note = {"note": "已联系网格员，本周补巡"}
            reply = await http.post(f"/v1/alerts/{a['id']}/acknowledge", json=note)
            reply.raise_for_status()
            acked += 1
    return acked, resolved


async def change_setting(http: httpx.AsyncClient, scenario: Scenario) -> None:
    """The street's supervisor changes its setting (:data:`~client.scenario.CHANGED_SETTING`)."""
    reply = await http.put(f"/v1/units/{scenario.setting_unit}/settings", json=CHANGED_SETTING)
    reply.raise_for_status()
