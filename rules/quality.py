"""Data quality: patrols that cannot be trusted as recorded, and devices that fell silent.

:func:`patrol_quality` returns exactly one finding per rule of :data:`PATROL_RULES`, in that
order, for one worker's week: breached iff at least one patrol offends, with evidence
``{"patrols": offending ids (sorted, at most 50), "count": how many offend, ...figures}``;
otherwise resolved with reason "no longer found". Overlaps are found by sorting and sweeping,
``O(n log n)``; two intervals overlap iff ``a.started < b.ended and b.started < a.ended``, so
patrols that merely touch (one ends when the next starts) do not.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any, NamedTuple

from rules.findings import Finding
from rules.periods import Week, local_minute
from rules.policy import Policy, span_text
from sync.durations import HOUR_MS

EVIDENCE_LIMIT = 50
"""At most this many ids are listed in an evidence list (``count`` gives the total)."""

PATROL_RULES = (
    "overlapping_patrols",
    "implausible_duration",
    "outside_grid",
    "future_event",
    "mock_location",
    "impossible_speed",
    "never_moved",
    "shared_device",
)


class Patrol(NamedTuple):
    """A patrol as the quality rules see it (effective values: amendments applied)."""

    id: str
    worker_id: str
    device_id: str
    grid_id: str
    started_ms: int
    ended_ms: int
    duration_ms: int
    flags: tuple[str, ...]
    inside_share: float | None
    distance_m: float | None
    max_speed_mps: float | None
    mock_location: bool
    points: int
    boot_id: str | None = None
    """The boot of the phone that recorded it, when the app sent one (``CheckinBody.boot_id``)."""


def route_fields(route: Mapping[str, Any] | None) -> dict[str, Any]:
    """The :class:`Patrol` fields read from a stored check-in's route summary (its keys are the
    app's; an absent summary reads as no figures)."""
    route = route or {}
    return {
        "inside_share": route.get("inside_share"),
        "distance_m": route.get("distance_m"),
        "max_speed_mps": route.get("max_speed_mps"),
        "mock_location": bool(route.get("mock_location", False)),
        "points": int(route.get("points", 0)),
    }


def reach(start_ms: int, end_ms: int, patrols: Iterable[Any]) -> tuple[int, int]:
    """The span another patrol must overlap to overlap one of ``patrols`` (each with
    ``started_ms`` and ``ended_ms``) or the week ``[start_ms, end_ms)``: a patrol that runs past
    the week's end widens it."""
    spans = [(p.started_ms, p.ended_ms) for p in patrols]
    return min([start_ms, *(a for a, _ in spans)]), max([end_ms, *(b for _, b in spans)])


def _ids(ids: Iterable[str]) -> list[str]:
    return sorted(set(ids))[:EVIDENCE_LIMIT]


def _self_overlaps(patrols: Sequence[Patrol]) -> tuple[set[str], list[list[str]]]:
    """Ids of the patrols that overlap another one, and some overlapping pairs.

    Sweep by start, keeping the patrol with the latest end so far: a patrol overlaps an earlier
    one iff it starts before that latest end, and each patrol that overlaps a later one is
    caught when the first of those is swept (sorting ``(start, end)`` puts an empty patrol
    before the longer ones that start with it, which do not overlap it).
    """
    offenders: set[str] = set()
    pairs: list[list[str]] = []
    holder: Patrol | None = None
    for p in sorted(patrols, key=lambda p: (p.started_ms, p.ended_ms, p.id)):
        if holder is not None and holder.ended_ms > p.started_ms:
            offenders.update((holder.id, p.id))
            pairs.append(sorted((holder.id, p.id)))
        if holder is None or p.ended_ms > holder.ended_ms:
            holder = p
    return offenders, pairs


def _overlapping(xs: Sequence[Patrol], ys: Sequence[Patrol]) -> set[str]:
    """Ids of the patrols of ``xs`` that overlap at least one patrol of ``ys``."""
    ordered = sorted(ys, key=lambda y: y.started_ms)
    starts = [y.started_ms for y in ordered]
    latest_end = list(accumulate((y.ended_ms for y in ordered), max))
    found: set[str] = set()
    for x in xs:
        # ys starting before x (or with it, unless x is empty): overlap iff one ends after x starts
        k = (bisect_right if x.ended_ms > x.started_ms else bisect_left)(starts, x.started_ms)
        # ys starting strictly inside x always overlap it
        inside = bisect_right(starts, x.started_ms) < bisect_left(starts, x.ended_ms)
        if (k and latest_end[k - 1] > x.started_ms) or inside:
            found.add(x.id)
    return found


def _tests(policy: Policy) -> dict[str, Callable[[Patrol], bool]]:
    """The rules judged on each patrol alone: rule → does this patrol offend?"""
    return {
        "implausible_duration": lambda p: p.duration_ms > policy.max_patrol_ms,
        "outside_grid": lambda p: (
            p.inside_share is not None and p.inside_share < policy.min_inside_share
        ),
        "future_event": lambda p: "future_event" in p.flags,
        "mock_location": lambda p: p.mock_location,
        "impossible_speed": lambda p: (
            p.max_speed_mps is not None and p.max_speed_mps > policy.max_speed_mps
        ),
        "never_moved": lambda p: (
            p.duration_ms >= policy.quota_min_patrol_ms
            and p.points >= 2
            and p.distance_m is not None
            and p.distance_m < policy.never_moved_m
        ),
    }


def _figures(rule: str, bad: Sequence[Patrol], policy: Policy) -> dict[str, Any]:
    """The figures of a per-patrol rule: its threshold and the worst offending value."""
    if rule == "implausible_duration":
        return {
            "max_patrol_ms": policy.max_patrol_ms,
            "longest_ms": max(p.duration_ms for p in bad),
        }
    if rule == "outside_grid":
        shares = [p.inside_share for p in bad if p.inside_share is not None]
        return {"min_inside_share": policy.min_inside_share, "lowest_inside_share": min(shares)}
    if rule == "impossible_speed":
        speeds = [p.max_speed_mps for p in bad if p.max_speed_mps is not None]
        return {"max_speed_mps": policy.max_speed_mps, "fastest_mps": max(speeds)}
    if rule == "never_moved":
        moved = [p.distance_m for p in bad if p.distance_m is not None]
        return {"never_moved_m": policy.never_moved_m, "max_distance_m": max(moved)}
    return {}


def _phones(p: Patrol) -> tuple[tuple[str, str], ...]:
    """The phone a patrol was recorded on, as keys: its device id, and its boot when the app
    sent one. A boot belongs to one phone, whichever enrolment (device id) recorded on it, so
    two workers' patrols of one boot were recorded on one phone."""
    device = ("device", p.device_id)
    return (device, ("boot", p.boot_id)) if p.boot_id else (device,)


class Phones:
    """Patrols by the phone they were recorded on (their device id, and their boot), to find
    the other workers' patrols a worker's must be compared with (``shared_device``) without
    comparing every worker with every patrol."""

    def __init__(self, patrols: Iterable[Patrol]) -> None:
        self._on: dict[tuple[str, str], list[Patrol]] = defaultdict(list)
        for p in patrols:
            for key in _phones(p):
                self._on[key].append(p)

    def others(self, worker_id: str, patrols: Iterable[Patrol]) -> list[Patrol]:
        """The other workers' patrols recorded on a phone one of ``patrols`` was, by id."""
        found: dict[str, Patrol] = {}
        for key in {key for p in patrols for key in _phones(p)}:
            found |= {c.id: c for c in self._on.get(key, ()) if c.worker_id != worker_id}
        return [found[i] for i in sorted(found)]


def _shared_device(
    worker_id: str, patrols: Sequence[Patrol], others_on_devices: Sequence[Patrol]
) -> tuple[set[str], dict[str, Any]]:
    """This worker's patrols overlapping another worker's on the same phone, and figures."""
    mine: dict[tuple[str, str], list[Patrol]] = defaultdict(list)
    for p in patrols:
        for key in _phones(p):
            mine[key].append(p)
    theirs: dict[tuple[str, str], list[Patrol]] = defaultdict(list)
    for p in Phones(others_on_devices).others(worker_id, patrols):
        for key in _phones(p):
            if key in mine:
                theirs[key].append(p)
    shared: set[str] = set()
    hit: dict[str, Patrol] = {}
    boots: set[str] = set()
    for key, others in theirs.items():
        found = _overlapping(mine[key], others)
        shared |= found
        if found and key[0] == "boot":
            boots.add(key[1])
        matched = _overlapping(others, mine[key])
        hit |= {p.id: p for p in others if p.id in matched}
    if not shared:
        return shared, {}
    figures = {
        "devices": _ids(p.device_id for p in patrols if p.id in shared),
        "other_workers": _ids(p.worker_id for p in hit.values()),
        "other_patrols": _ids(hit),
    }
    return shared, figures | ({"boots": _ids(boots)} if boots else {})


def _named_only(figures: dict[str, Any], others: Sequence[Patrol], named: Container[str]) -> None:
    """Keep in ``figures`` only the other workers in ``named`` (and their patrols); count the
    rest as ``other_workers_elsewhere``."""
    worker_of = {p.id: p.worker_id for p in others}
    hidden = [w for w in figures["other_workers"] if w not in named]
    if hidden:
        figures["other_workers"] = [w for w in figures["other_workers"] if w in named]
        figures["other_patrols"] = [i for i in figures["other_patrols"] if worker_of[i] in named]
        figures["other_workers_elsewhere"] = len(hidden)


def _hits(
    worker_id: str,
    patrols: Sequence[Patrol],
    others_on_devices: Sequence[Patrol],
    policy: Policy,
) -> dict[str, tuple[set[str], dict[str, Any]]]:
    """Per rule of :data:`PATROL_RULES`: the ids of the offending patrols, and the figures."""
    offenders, pairs = _self_overlaps(patrols)
    hits = {"overlapping_patrols": (offenders, {"pairs": sorted(pairs)[:EVIDENCE_LIMIT]})}
    for rule, offends in _tests(policy).items():
        bad = [p for p in patrols if offends(p)]
        hits[rule] = ({p.id for p in bad}, _figures(rule, bad, policy) if bad else {})
    hits["shared_device"] = _shared_device(worker_id, patrols, others_on_devices)
    return hits


def offences(
    worker_id: str,
    patrols: Sequence[Patrol],
    others_on_devices: Sequence[Patrol],
    policy: Policy,
) -> dict[str, list[str]]:
    """Per patrol id of ``patrols``: the rules of :data:`PATROL_RULES` it offends, in that
    order (the same test :func:`patrol_quality` applies, without the evidence limit)."""
    hits = _hits(worker_id, patrols, others_on_devices, policy)
    found: dict[str, list[str]] = {p.id: [] for p in patrols}
    for rule in PATROL_RULES:
        for patrol_id in sorted(hits[rule][0]):
            if patrol_id in found:
                found[patrol_id].append(rule)
    return found


def patrol_quality(
    worker_id: str,
    week: Week,
    patrols: Sequence[Patrol],
    others_on_devices: Sequence[Patrol],
    policy: Policy,
    *,
    named: Container[str] | None = None,
) -> list[Finding]:
    """One finding per rule of :data:`PATROL_RULES` on ``worker_id``'s patrols of ``week``.

    ``patrols`` are the worker's effective patrols of the week; ``others_on_devices`` are other
    workers' patrols on the phones this worker used (entries of ``worker_id`` itself are
    ignored there). ``shared_device``'s evidence names only the other workers in ``named``
    (None: all), and counts the others: whoever sees this worker's alert may not see them.
    Whether the week is still open to re-evaluation is the caller's business
    (``future_event`` comes from the check-in flags: no rule reads the clock)."""
    hits = _hits(worker_id, patrols, others_on_devices, policy)
    if named is not None and hits["shared_device"][0]:
        _named_only(hits["shared_device"][1], others_on_devices, named)
    findings: list[Finding] = []
    for rule in PATROL_RULES:
        ids, figures = hits[rule]
        findings.append(
            Finding(
                rule=rule,
                subject_kind="worker",
                subject_id=worker_id,
                period=week.label,
                breached=bool(ids),
                evidence={"patrols": _ids(ids), "count": len(ids), **figures} if ids else {},
                reason="" if ids else "no longer found",
            )
        )
    return findings


def device_silence(
    device_id: str,
    last_seen_ms: int | None,
    created_ms: int,
    open_periods: Sequence[str],
    now_ms: int,
    policy: Policy,
) -> list[Finding]:
    """``device_silent`` findings (severity info) of one device at ``now_ms``.

    The last contact is ``last_seen_ms``, or ``created_ms`` for a device that never synced; the
    period is its local minute, so each silence is one alert. Breached iff ``now_ms - last
    contact > silent_device_ms``. Each other of ``open_periods`` is resolved: the device synced
    again (a later contact), or the setting was raised.
    """
    contact = last_seen_ms if last_seen_ms is not None else created_ms
    period = local_minute(contact, policy.tz)
    silent = now_ms - contact > policy.silent_device_ms
    findings: list[Finding] = []
    if silent:
        evidence = {
            "last_contact_ms": contact,
            "never_synced": last_seen_ms is None,
            "silent_hours": round((now_ms - contact) / HOUR_MS, 2),
            "silent_device_ms": policy.silent_device_ms,
        }
        findings.append(
            Finding("device_silent", "device", device_id, period, True, "info", evidence)
        )
    for stale in sorted(set(open_periods)):
        if silent and stale == period:
            continue
        reason = (
            f"synced again at {period.replace('T', ' ')}"
            if stale != period
            else f"silent for no longer than {span_text(policy.silent_device_ms)}"
        )
        findings.append(
            Finding("device_silent", "device", device_id, stale, False, "info", reason=reason)
        )
    return findings
