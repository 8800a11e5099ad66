"""The people and places a supervisor reads about: a unit's children, its workers, one worker
with grids, devices and recent weeks, and a worker's patrols of one week."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.alerts import WeekTally


class ChildUnit(msgspec.Struct, kw_only=True):
    """A child of a unit (``GET /v1/units/{unit_id}/children``)."""

    id: str
    kind: str
    name: str
    code: str = ""


class ChildUnits(msgspec.Struct, kw_only=True):
    unit_id: str
    children: list[ChildUnit]
    """By id."""


class GridRef(msgspec.Struct, kw_only=True):
    """A grid a worker patrols, with the name of the community that holds it."""

    id: str
    name: str
    community_id: str | None = None
    community_name: str = ""
    """The grid's parent unit's name (empty for a grid without a parent)."""


class WorkerSummary(msgspec.Struct, kw_only=True):
    """One worker of a unit's list."""

    id: str
    name: str
    phone: str = ""
    """Masked: the last four digits only (``*******1234``); empty when none was imported."""
    active: bool
    grids: list[GridRef]
    """Only the worker's grids inside the caller's subtree."""
    last_sync_ms: int | None = None
    """The latest ``last_seen_ms`` of the worker's devices (revoked ones included)."""
    week: WeekTally | None = None
    """This week's tally, once the quota worker has counted it."""


class WorkerPage(msgspec.Struct, kw_only=True):
    unit_id: str
    week: str
    """The ISO week of ``workers[*].week`` (the current one, in the unit's time zone)."""
    workers: list[WorkerSummary]
    """By worker id."""
    cursor: str | None = None
    """Pass as ``cursor`` for the next page; absent on the last page."""


class DeviceOut(msgspec.Struct, kw_only=True):
    id: str
    platform: str = ""
    created_ms: int
    last_seen_ms: int | None = None
    last_skew_ms: int | None = None
    """Device clock minus server clock at its last push (ms)."""
    revoked_ms: int | None = None


class WorkerDetail(msgspec.Struct, kw_only=True):
    """``GET /v1/workers/{worker_id}``."""

    id: str
    name: str
    phone: str = ""
    """Masked as in :class:`WorkerSummary`."""
    active: bool
    grids: list[GridRef]
    devices: list[DeviceOut]
    weeks: list[WeekTally]
    """The verdicts of the last five ISO weeks (newest first; weeks never counted are absent)."""


PatrolStanding = Literal["counted", "too_short"]


class PatrolOut(msgspec.Struct, kw_only=True):
    """The effective version of one patrol (amendments applied)."""

    id: str
    """The id of the effective version."""
    root_id: str
    """The original check-in of its amendment chain."""
    amended: bool = False
    amend_reason: str = ""
    grid_id: str
    device_id: str
    started_ms: int
    ended_ms: int
    duration_ms: int
    counted: bool
    standing: PatrolStanding
    """Why it counts or not, as ``rules.quota.standing`` decides: ``counted`` or
    ``too_short`` (under the minimum duration)."""
    flags: list[str] = []
    """The check-in's own flags (``clock_skew``, ``mock_location``, ``skew_uncorrected``…)."""
    findings: list[str] = []
    """The data-quality rules this patrol offends this week (``overlapping_patrols``,
    ``outside_grid``, ``shared_device``…), as ``rules.quality`` finds them."""
    visit_count: int = 0


class WorkerPatrols(msgspec.Struct, kw_only=True):
    """``GET /v1/workers/{worker_id}/patrols``: one ISO week of a worker's patrols."""

    worker_id: str
    week: str
    tz: str
    """The time zone of the worker's first grid: the week is local to it."""
    start_ms: int
    end_ms: int
    required: int
    min_patrol_ms: int
    counted: int
    patrols: list[PatrolOut]
    """Effective patrols that started in the week, by start."""


class UnitPatrols(msgspec.Struct, kw_only=True):
    """``GET /v1/units/{unit_id}/patrols``: the week of every worker with a grid in the unit."""

    unit_id: str
    week: str
    names: dict[str, str]
    """worker id → name."""
    workers: list[WorkerPatrols]
    """By worker id (workers without a grid are not judged and absent)."""
