"""Data quality of a worker's week (one finding per rule) and silent devices."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.findings import RULES
from rules.periods import local_minute, week
from rules.policy import Policy
from rules.quality import PATROL_RULES, Patrol, Phones, device_silence, patrol_quality

H = 3_600_000
P = Policy()
W = week("2026-W47", "Asia/Shanghai")
T = W.start_ms + 8 * H  # Monday 08:00 +08
NOW = W.end_ms + H


def patrol(id: str, start_h: float, end_h: float, **kw: Any) -> Patrol:
    started, ended = T + int(start_h * H), T + int(end_h * H)
    fields: dict[str, Any] = {
        "id": id,
        "worker_id": "w1",
        "device_id": "d1",
        "grid_id": "g1",
        "started_ms": started,
        "ended_ms": ended,
        "duration_ms": ended - started,
        "flags": (),
        "inside_share": 0.9,
        "distance_m": 3000.0,
        "max_speed_mps": 1.5,
        "mock_location": False,
        "points": 100,
    }
    fields.update(kw)
    return Patrol(**fields)


def offenders(patrols: list[Patrol], others: list[Patrol] | None = None) -> dict[str, list[str]]:
    found = patrol_quality("w1", W, patrols, others or [], P)
    assert [f.rule for f in found] == list(PATROL_RULES)
    assert all(f.subject_kind == "worker" and f.period == "2026-W47" for f in found)
    return {f.rule: list(f.evidence["patrols"]) for f in found if f.breached}


def test_clean_week_resolves_every_rule() -> None:
    found = patrol_quality("w1", W, [patrol("a", 0, 4), patrol("b", 24, 28)], [], P)
    assert {f.rule for f in found} == set(PATROL_RULES) <= set(RULES)
    assert all(not f.breached and f.reason == "no longer found" for f in found)


# (name, patrols, rule, offending ids)
CASES: list[tuple[str, list[Patrol], str | None, list[str]]] = [
    ("overlap", [patrol("a", 0, 4), patrol("b", 3, 7)], "overlapping_patrols", ["a", "b"]),
    ("touching_ends", [patrol("a", 0, 4), patrol("b", 4, 8)], None, []),
    ("nested", [patrol("a", 0, 10), patrol("b", 2, 3)], "overlapping_patrols", ["a", "b"]),
    ("same_start", [patrol("a", 0, 4), patrol("b", 0, 1)], "overlapping_patrols", ["a", "b"]),
    ("chain_of_three", [patrol("a", 0, 5), patrol("b", 4, 9), patrol("c", 9, 12)],
     "overlapping_patrols", ["a", "b"]),
    ("twelve_hours", [patrol("a", 0, 12)], None, []),
    ("twelve_hours_and_a_ms", [patrol("a", 0, 12, duration_ms=12 * H + 1)],
     "implausible_duration", ["a"]),
    ("half_inside", [patrol("a", 0, 4, inside_share=0.5)], None, []),
    ("mostly_outside", [patrol("a", 0, 4, inside_share=0.49)], "outside_grid", ["a"]),
    ("no_route_share", [patrol("a", 0, 4, inside_share=None)], None, []),
    ("future", [patrol("a", 0, 4, flags=("clock_skew", "future_event"))], "future_event", ["a"]),
    ("mock", [patrol("a", 0, 4, mock_location=True)], "mock_location", ["a"]),
    ("speed_at_limit", [patrol("a", 0, 4, max_speed_mps=20.0)], None, []),
    ("speed_over_limit", [patrol("a", 0, 4, max_speed_mps=20.5)], "impossible_speed", ["a"]),
    ("no_speed", [patrol("a", 0, 4, max_speed_mps=None)], None, []),
    ("never_moved", [patrol("a", 0, 4, distance_m=49.9, points=2)], "never_moved", ["a"]),
    ("moved_50_m", [patrol("a", 0, 4, distance_m=50.0)], None, []),
    ("one_fix_only", [patrol("a", 0, 4, distance_m=0.0, points=1)], None, []),
    ("short_patrol_standing", [patrol("a", 0, 4, distance_m=0.0, duration_ms=4 * H - 1)], None,
     []),
    ("no_route", [patrol("a", 0, 4, distance_m=None)], None, []),
]  # fmt: skip


@pytest.mark.parametrize(("name", "patrols", "rule", "ids"), CASES, ids=[c[0] for c in CASES])
def test_rule(name: str, patrols: list[Patrol], rule: str | None, ids: list[str]) -> None:
    assert offenders(patrols) == ({rule: ids} if rule else {})


def test_evidence_figures() -> None:
    slow = patrol("a", 0, 4, inside_share=0.2, max_speed_mps=33.0)
    found = {f.rule: f for f in patrol_quality("w1", W, [slow], [], P)}
    assert found["outside_grid"].evidence == {
        "patrols": ["a"],
        "count": 1,
        "min_inside_share": 0.5,
        "lowest_inside_share": 0.2,
    }
    assert found["impossible_speed"].evidence["fastest_mps"] == 33.0
    assert found["outside_grid"].severity == "warning"


def test_more_evidence_figures() -> None:
    ps = [patrol("a", 0, 13, distance_m=10.0), patrol("b", 1, 5, distance_m=20.0)]
    found = {f.rule: f for f in patrol_quality("w1", W, ps, [], P) if f.breached}
    assert found["overlapping_patrols"].evidence["pairs"] == [["a", "b"]]
    assert found["implausible_duration"].evidence["longest_ms"] == 13 * H
    assert found["never_moved"].evidence == {
        "patrols": ["a", "b"],
        "count": 2,
        "never_moved_m": 50.0,
        "max_distance_m": 20.0,
    }


def test_evidence_lists_at_most_50_ids() -> None:
    many = [patrol(f"p{i:03d}", 2 * i, 2 * i + 1, mock_location=True) for i in range(60)]
    [mock] = [f for f in patrol_quality("w1", W, many, [], P) if f.breached]
    assert mock.evidence["count"] == 60
    assert mock.evidence["patrols"] == [f"p{i:03d}" for i in range(50)]


def other(id: str, start_h: float, end_h: float, **kw: Any) -> Patrol:
    return patrol(id, start_h, end_h, **{"worker_id": "w2", **kw})


# (name, mine, others, my offending ids)
SHARED = [
    ("same_device_same_time", [patrol("a", 0, 4)], [other("x", 2, 6)], ["a"]),
    ("same_device_touching", [patrol("a", 0, 4)], [other("x", 4, 8)], []),
    ("other_device", [patrol("a", 0, 4)], [other("x", 2, 6, device_id="d2")], []),
    ("my_own_patrol_ignored", [patrol("a", 0, 4)], [patrol("b", 2, 6)], []),
    ("inside_a_later_long_one", [patrol("a", 0, 10, device_id="d1"), patrol("b", 5, 20)],
     [other("x", 8, 9)], ["a", "b"]),
    ("empty_patrol_inside", [patrol("a", 0, 4)], [other("x", 2, 2)], ["a"]),
    ("empty_patrol_at_start", [patrol("a", 0, 4)], [other("x", 0, 0)], []),
    # two enrolments (device ids) on one phone: the same boot
    ("same_boot_other_device", [patrol("a", 0, 4, boot_id="b1")],
     [other("x", 2, 6, device_id="d2", boot_id="b1")], ["a"]),
    ("same_boot_other_time", [patrol("a", 0, 4, boot_id="b1")],
     [other("x", 5, 6, device_id="d2", boot_id="b1")], []),
    ("other_boot_other_device", [patrol("a", 0, 4, boot_id="b1")],
     [other("x", 2, 6, device_id="d2", boot_id="b2")], []),
    ("no_boot_is_no_phone", [patrol("a", 0, 4)], [other("x", 2, 6, device_id="d2")], []),
    ("device_and_boot", [patrol("a", 0, 4), patrol("b", 1, 3, boot_id="b1")],
     [other("x", 2, 6, device_id="d2", boot_id="b1")], ["b"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "mine", "others", "ids"), SHARED, ids=[c[0] for c in SHARED])
def test_shared_device(name: str, mine: list[Patrol], others: list[Patrol], ids: list[str]) -> None:
    assert offenders(mine, others).get("shared_device", []) == ids


def test_shared_device_evidence() -> None:
    found = patrol_quality("w1", W, [patrol("a", 0, 4)], [other("x", 2, 6)], P)
    [shared] = [f for f in found if f.rule == "shared_device"]
    assert shared.evidence == {
        "patrols": ["a"],
        "count": 1,
        "devices": ["d1"],
        "other_workers": ["w2"],
        "other_patrols": ["x"],
    }


def test_shared_boot_evidence_names_the_boot() -> None:
    mine = [patrol("a", 0, 4, boot_id="b1"), patrol("b", 5, 8, device_id="d3", boot_id="b9")]
    theirs = [other("x", 2, 6, device_id="d2", boot_id="b1"), other("y", 2, 6, device_id="d3")]
    [shared] = [f for f in patrol_quality("w1", W, mine, theirs, P) if f.rule == "shared_device"]
    assert shared.evidence == {
        "patrols": ["a", "b"],
        "count": 2,
        "devices": ["d1", "d3"],
        "other_workers": ["w2"],
        "other_patrols": ["x", "y"],
        "boots": ["b1"],
    }


def test_shared_evidence_names_only_the_workers_it_may() -> None:
    mine = [patrol("a", 0, 4, boot_id="b1")]
    theirs = [
        other("x", 1, 2, device_id="d2", boot_id="b1"),
        other("y", 2, 3, device_id="d3", boot_id="b1", worker_id="w3"),
    ]
    found = patrol_quality("w1", W, mine, theirs, P, named={"w3"})
    [shared] = [f for f in found if f.rule == "shared_device"]
    assert (shared.evidence["other_workers"], shared.evidence["other_patrols"]) == (["w3"], ["y"])
    assert shared.evidence["other_workers_elsewhere"] == 1
    everyone = patrol_quality("w1", W, mine, theirs, P)
    [shared] = [f for f in everyone if f.rule == "shared_device"]
    assert shared.evidence["other_workers"] == ["w2", "w3"]
    assert "other_workers_elsewhere" not in shared.evidence


def test_phones_keep_other_workers_on_my_phones() -> None:
    mine = [patrol("a", 0, 4, boot_id="b1")]
    candidates = [
        other("x", 9, 10, device_id="d2", boot_id="b1"),  # my boot
        other("y", 9, 10),  # my device
        other("z", 9, 10, device_id="d2", boot_id="b2"),  # neither
        patrol("b", 9, 10, boot_id="b1"),  # mine
    ]
    assert [p.id for p in Phones(candidates).others("w1", mine)] == ["x", "y"]


def test_many_patrols_in_n_log_n() -> None:
    n = 20_000  # quadratic would be 2 * 10**8 comparisons
    many = [patrol(f"p{i}", i, i + 1) for i in range(n)] + [patrol("late", n - 0.5, n + 1)]
    mine = [patrol(f"m{i}", i, i + 1) for i in range(n)]
    theirs = [other(f"o{i}", i + 0.5, i + 0.75) for i in range(n)]
    assert offenders(many)["overlapping_patrols"] == sorted([f"p{n - 1}", "late"])
    assert offenders(mine, theirs)["shared_device"][:2] == ["m0", "m1"]


def overlap(a: Patrol, b: Patrol) -> bool:
    return a.started_ms < b.ended_ms and b.started_ms < a.ended_ms


intervals = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 4)), min_size=0, max_size=12).map(
    lambda xs: [(s, s + n) for s, n in xs]
)


@given(intervals)
def test_overlaps_match_brute_force(spans: list[tuple[int, int]]) -> None:
    ps = [patrol(f"p{i:02d}", s, e) for i, (s, e) in enumerate(spans)]
    expected = sorted({a.id for a in ps for b in ps if a is not b and overlap(a, b)})
    assert offenders(ps).get("overlapping_patrols", []) == expected


@given(intervals, intervals)
def test_shared_device_matches_brute_force(
    mine_spans: list[tuple[int, int]], their_spans: list[tuple[int, int]]
) -> None:
    mine = [patrol(f"m{i:02d}", s, e) for i, (s, e) in enumerate(mine_spans)]
    theirs = [other(f"o{i:02d}", s, e) for i, (s, e) in enumerate(their_spans)]
    expected = sorted({a.id for a in mine for b in theirs if overlap(a, b)})
    assert offenders(mine, theirs).get("shared_device", []) == expected


phones = st.lists(st.tuples(st.sampled_from(["d1", "d2"]), st.sampled_from([None, "b1", "b2"])))


@given(intervals, intervals, phones, phones)
def test_shared_phone_matches_brute_force(
    mine_spans: list[tuple[int, int]],
    their_spans: list[tuple[int, int]],
    mine_phones: list[tuple[str, str | None]],
    their_phones: list[tuple[str, str | None]],
) -> None:
    def on(
        spans: list[tuple[int, int]], where: list[tuple[str, str | None]], make: Any
    ) -> list[Patrol]:
        return [
            make(f"{make.__name__[0]}{i:02d}", s, e, device_id=d, boot_id=b)
            for i, ((s, e), (d, b)) in enumerate(zip(spans, where, strict=False))
        ]

    mine, theirs = on(mine_spans, mine_phones, patrol), on(their_spans, their_phones, other)

    def same(a: Patrol, b: Patrol) -> bool:
        return a.device_id == b.device_id or (a.boot_id is not None and a.boot_id == b.boot_id)

    expected = sorted({a.id for a in mine for b in theirs if overlap(a, b) and same(a, b)})
    assert offenders(mine, theirs).get("shared_device", []) == expected


SEEN = NOW - 10 * H
LIMIT = P.silent_device_ms


# (name, last seen, created, now, silent since or None)
SILENCE = [
    ("recent", SEEN, 0, SEEN + LIMIT, None),
    ("silent_by_a_ms", SEEN, 0, SEEN + LIMIT + 1, SEEN),
    ("never_synced_young", None, SEEN, SEEN + LIMIT, None),
    ("never_synced_silent", None, SEEN, SEEN + LIMIT + 1, SEEN),
]


@pytest.mark.parametrize(
    ("name", "seen", "created", "now", "since"), SILENCE, ids=[c[0] for c in SILENCE]
)
def test_device_silence(
    name: str, seen: int | None, created: int, now: int, since: int | None
) -> None:
    found = device_silence("d1", seen, created, [], now, P)
    if since is None:
        assert found == []
        return
    [f] = found
    assert (f.rule, f.subject_kind, f.subject_id, f.severity, f.breached) == (
        "device_silent",
        "device",
        "d1",
        "info",
        True,
    )
    assert f.period == local_minute(since, "Asia/Shanghai")
    assert f.evidence["last_contact_ms"] == since
    assert f.evidence["never_synced"] is (seen is None)


def test_synced_again_resolves_the_earlier_silence() -> None:
    old = local_minute(SEEN - 5 * LIMIT, "Asia/Shanghai")
    found = device_silence("d1", SEEN, 0, [old], SEEN + H, P)
    assert [(f.period, f.breached) for f in found] == [(old, False)]
    assert found[0].reason == f"synced again at {local_minute(SEEN, 'Asia/Shanghai')}".replace(
        "T", " "
    )


def test_still_silent_keeps_its_alert_open() -> None:
    period = local_minute(SEEN, "Asia/Shanghai")
    found = device_silence("d1", SEEN, 0, [period], SEEN + 2 * LIMIT, P)
    assert [(f.period, f.breached) for f in found] == [(period, True)]
