"""The data-quality rules through the worker on PostgreSQL and Redis: one job judges several
workers' weeks from rows read for all of them at once, and each worker gets only their own
findings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog

from server.settings import Settings
from tests.conftest import running
from tests.integration.worker_support import (
    W47,
    alerts_of,
    at,
    drain,
    keyed,
    patrol,
    push_at,
    workers_added_at,
)
from tests.support import Clock, Fleet
from worker import evaluate

pytestmark = pytest.mark.postgres


@pytest.fixture
async def qfleet(worker_settings: Settings) -> AsyncIterator[Fleet]:
    async with running(worker_settings) as fleet:
        fleet.services.clock = Clock(at(0, 6))
        await workers_added_at(fleet, W47.start_ms)
        yield fleet


async def test_one_job_flags_only_the_worker_whose_patrols_overlap(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    zhang = await qfleet.device("w-zhang")
    wang = await qfleet.device("w-wang")
    await push_at(
        zhang,
        at(2, 20),
        [patrol("xinhua-g1", at(2, 8), 5), patrol("xinhua-g1", at(2, 10), 4.5)],
    )
    await push_at(
        wang,
        at(2, 21),
        [patrol("xinhua-g1", at(0, 8), 4), patrol("xinhua-g2", at(1, 8), 4)],
    )
    assert await drain(qfleet, worker_settings) >= 2  # both weeks, relayed in one job
    found = keyed(await alerts_of(qfleet, "s-xinhua", rule="overlapping_patrols"))
    assert set(found) == {("overlapping_patrols", "w-zhang", "2026-W47")}
    assert found[("overlapping_patrols", "w-zhang", "2026-W47")]["status"] == "open"


PHONE = "7c1e9a40-0b5d-4c37-9e51-2f6d1a8b3c90"
"""One phone's boot, sent by both workers' enrolments on it."""


@pytest.mark.parametrize("first", ["w-zhang", "w-wang"])
async def test_a_phone_shared_at_once_flags_both_workers_whoever_syncs_first(
    qfleet: Fleet, worker_settings: Settings, first: str
) -> None:
    """Wang's patrol is recorded on Zhang's phone while Zhang patrols with it. Each worker's
    finding needs the other's patrol, so the one who syncs second must bring the first one's
    evaluation back: each push's job evaluates the other worker too."""
    devices = {w: await qfleet.device(w) for w in ("w-zhang", "w-wang")}
    items = {
        "w-zhang": [patrol("xinhua-g1", at(2, 8), 5, boot_id=PHONE)],
        "w-wang": [patrol("xinhua-g2", at(2, 10), 1.5, boot_id=PHONE)],
    }
    second = "w-wang" if first == "w-zhang" else "w-zhang"
    await push_at(devices[first], at(2, 20), items[first])
    await drain(qfleet, worker_settings)
    assert await alerts_of(qfleet, "s-xinhua", rule="shared_device") == []
    await push_at(devices[second], at(2, 21), items[second])
    await drain(qfleet, worker_settings)
    found = keyed(await alerts_of(qfleet, "s-xinhua", rule="shared_device"))
    assert {k: a["status"] for k, a in found.items()} == {
        ("shared_device", "w-zhang", "2026-W47"): "open",
        ("shared_device", "w-wang", "2026-W47"): "open",
    }
    ids = {w: items[w][0]["id"] for w in items}
    other = {"w-zhang": "w-wang", "w-wang": "w-zhang"}
    for (_, worker, _), alert in found.items():
        # Both workers' alerts are placed in xinhua-g1 (Wang's first grid): each names the other.
        assert alert["evidence"] == {
            "patrols": [ids[worker]],
            "count": 1,
            "devices": [devices[worker].device_id],
            "other_workers": [other[worker]],
            "other_patrols": [ids[other[worker]]],
            "boots": [PHONE],
        }
    # Zhang's patrol really ended at 09:30, before Wang's began: both findings are over.
    amended = {
        **patrol("xinhua-g1", at(2, 8), 1.5, boot_id=PHONE),
        "op": "amend",
        "amends": ids["w-zhang"],
        "clock": devices["w-zhang"].tick(),
        "reason": "结束时间填错",
    }
    await push_at(devices["w-zhang"], at(2, 22), [amended])
    await drain(qfleet, worker_settings)
    found = keyed(await alerts_of(qfleet, "s-xinhua", rule="shared_device"))
    assert {a["status"] for a in found.values()} == {"auto_resolved"}
    assert len(found) == 2


async def test_a_shared_phone_across_midnight_on_sunday_flags_each_workers_own_week(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    """Wang's patrol starts on Sunday night (week 47) and runs into Monday, where Zhang's
    starts (week 48) on the same phone: each is flagged in the week their patrol began."""
    zhang = await qfleet.device("w-zhang")
    wang = await qfleet.device("w-wang")
    await push_at(wang, at(7, 2), [patrol("xinhua-g2", at(6, 23), 2, boot_id=PHONE)])
    await drain(qfleet, worker_settings)
    await push_at(zhang, at(7, 3), [patrol("xinhua-g1", at(7, 0.5), 1, boot_id=PHONE)])
    await drain(qfleet, worker_settings)
    found = keyed(await alerts_of(qfleet, "s-xinhua", rule="shared_device"))
    assert set(found) == {
        ("shared_device", "w-wang", "2026-W47"),
        ("shared_device", "w-zhang", "2026-W48"),
    }


async def test_a_worker_of_another_grid_is_counted_not_named(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    """Li looks after a grid of another community: Zhang's grid leader and secretary, who see
    Zhang's alert, may not see Li, so the evidence counts Li without naming her."""
    zhang = await qfleet.device("w-zhang")
    li = await qfleet.device("w-li")
    await push_at(zhang, at(2, 20), [patrol("xinhua-g1", at(2, 8), 5, boot_id=PHONE)])
    await push_at(li, at(2, 21), [patrol("qunzhong-g1", at(2, 10), 1.5, boot_id=PHONE)])
    await drain(qfleet, worker_settings)
    [alert] = await alerts_of(qfleet, "s-xinhua", rule="shared_device")
    evidence = alert["evidence"]
    assert (evidence["other_workers"], evidence["other_patrols"]) == ([], [])
    assert evidence["other_workers_elsewhere"] == 1
    [theirs] = await alerts_of(qfleet, "s-qunzhong", rule="shared_device")
    assert theirs["subject_id"] == "w-li" and theirs["evidence"]["other_workers_elsewhere"] == 1


async def test_two_phones_overlapping_in_time_flag_nobody(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    zhang = await qfleet.device("w-zhang")
    wang = await qfleet.device("w-wang")
    await push_at(zhang, at(2, 20), [patrol("xinhua-g1", at(2, 8), 5, boot_id=PHONE)])
    await push_at(wang, at(2, 21), [patrol("xinhua-g2", at(2, 10), 1.5, boot_id="other-phone")])
    await drain(qfleet, worker_settings)
    assert await alerts_of(qfleet, "s-xinhua", rule="shared_device") == []


async def test_one_job_evaluates_at_most_partners_limit_other_workers(
    qfleet: Fleet, worker_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A boot id that many workers' apps send (an app's mistake) must not make one job evaluate
    them all: past ``PARTNERS_LIMIT`` the rest are left out, and the job says so."""
    monkeypatch.setattr(evaluate, "PARTNERS_LIMIT", 1)
    li = await qfleet.device("w-li")
    wang = await qfleet.device("w-wang")
    zhang = await qfleet.device("w-zhang")
    await push_at(li, at(2, 20), [patrol("qunzhong-g1", at(2, 8), 5, boot_id=PHONE)])
    await drain(qfleet, worker_settings)
    await push_at(wang, at(2, 21), [patrol("xinhua-g2", at(2, 9), 3, boot_id=PHONE)])
    await drain(qfleet, worker_settings)
    with structlog.testing.capture_logs() as logs:
        await push_at(zhang, at(2, 22), [patrol("xinhua-g1", at(2, 10), 1, boot_id=PHONE)])
        await drain(qfleet, worker_settings)
    assert [
        e["workers"] for e in logs if e["event"] == "patrols of one boot from many workers"
    ] == [2]
    found = keyed(await alerts_of(qfleet, "s-dongfeng", rule="shared_device"))
    assert set(found) == {("shared_device", w, "2026-W47") for w in ("w-li", "w-wang", "w-zhang")}
    # Zhang's job evaluated Li (the first of the two, by id) and not Wang, who still knows only Li.
    wang_evidence = found[("shared_device", "w-wang", "2026-W47")]["evidence"]
    assert (wang_evidence["other_workers"], wang_evidence["other_workers_elsewhere"]) == ([], 1)
    zhang_evidence = found[("shared_device", "w-zhang", "2026-W47")]["evidence"]
    assert zhang_evidence["other_workers"] == ["w-wang"]


async def test_the_patrols_report_marks_a_shared_phone_as_the_worker_does(qfleet: Fleet) -> None:
    """The supervisors' patrols report reads the other workers' patrols on the same boots as
    the worker does: a patrol recorded during a boot another worker also recorded on is marked
    ``shared_device``; one on a boot of its worker's alone is not."""
    zhang = await qfleet.device("w-zhang")
    wang = await qfleet.device("w-wang")
    shared = patrol("xinhua-g1", at(2, 8), 5, boot_id=PHONE)
    own = patrol("xinhua-g1", at(3, 8), 5, boot_id="zhang-only-boot")
    await push_at(zhang, at(3, 20), [shared, own])
    await push_at(wang, at(3, 21), [patrol("xinhua-g2", at(2, 10), 1.5, boot_id=PHONE)])
    headers = await qfleet.supervisor("s-xinhua")
    reply = await qfleet.client.get(
        "/v1/workers/w-zhang/patrols", params={"week": "2026-W47"}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    findings = {p["id"]: p["findings"] for p in reply.json()["patrols"]}
    assert "shared_device" in findings[shared["id"]]
    assert "shared_device" not in findings[own["id"]]
