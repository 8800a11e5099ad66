"""The fleet simulator: a district, a week of patrols and visits, phones that behave like phones.

It plans a past ISO week (so every phone can sync after it ended and verdicts are final) with a
known truth — which workers miss the quota (too few patrols, or patrols under 4 h), which
high-risk households go unvisited — and plays it through reference clients: phones record
offline, carry skewed wall clocks (durations come from the monotonic clock), lose replies after
the server committed and resend, and two phones sometimes edit the same note. The planned week
depends only on ``seed``; the network faults only on ``fault_seed``, so two runs with different
fault seeds must end in the same server state.

Talks to the server only over HTTP (enrolment codes from a supervisor token). ``patrolsync
demo`` and ``patrolsync simulate`` play it.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from client.device import Backoff, DeviceClient
from client.store import LocalStore
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛"]
NOTES = [
    "老人身体不错，按时吃药",
    "家里暖气不热，已反映物业",
    "想要一个轮椅坡道",
    "独居，子女在外地",
    "需要代办医保报销",
    "孩子放学无人照看",
    "楼道灯坏了",
]


@dataclass(frozen=True)
class Shape:
    """A district's size. ``JINTAI`` is the district of the domain notes (753 workers for about
    1,300 grids: most look after two)."""

    communities: int
    grids_per_community: int
    workers: int
    households_per_grid: int


JINTAI = Shape(communities=59, grids_per_community=22, workers=753, households_per_grid=12)
SMALL = Shape(communities=2, grids_per_community=3, workers=8, households_per_grid=4)


def district(shape: Shape, seed: int = 1) -> dict[str, Any]:
    """An import document: district → streets → communities → grids, workers (each with one grid,
    some grids with two workers), supervisors (district, each community), households."""
    rng = random.Random(seed)
    grids = [
        f"c{c:02d}-g{g:02d}"
        for c in range(shape.communities)
        for g in range(shape.grids_per_community)
    ]
    streets = max(1, shape.communities // 6)
    communities = []
    for c in range(shape.communities):
        kids = [
            {"id": g, "kind": "grid", "name": f"第{int(g[-2:]) + 1}网格"}
            for g in grids
            if g.startswith(f"c{c:02d}-")
        ]
        communities.append(
            {
                "id": f"c{c:02d}",
                "kind": "community",
                "name": f"社区{c + 1}",
                "children": kids,
                "street": c % streets,
            }
        )
    units = [
        {
            "id": "sim",
            "kind": "district",
            "name": "模拟区",
            "children": [
                {
                    "id": f"s{s}",
                    "kind": "street",
                    "name": f"街道{s + 1}",
                    "children": [
                        {k: v for k, v in c.items() if k != "street"}
                        for c in communities
                        if c["street"] == s
                    ],
                }
                for s in range(streets)
            ],
        }
    ]
    # Every grid has a worker (with fewer workers than grids, some look after two or more);
    # one worker in ten also shares the next worker's first grid, so some notes are written by
    # two phones.
    own = [grids[i :: shape.workers] or [grids[i % len(grids)]] for i in range(shape.workers)]
    for i in range(0, shape.workers - 1, 10):
        own[i] = [*own[i], *(g for g in own[i + 1][:1] if g not in own[i])]
    workers = [
        {"id": f"w{i:04d}", "name": rng.choice(SURNAMES) + rng.choice(GIVEN), "grids": own[i]}
        for i in range(shape.workers)
    ]
    tiers = ["high_risk"] * 2 + ["key"] * 3 + ["general"] * 5
    households = [
        {
            "id": f"{g}-h{h:02d}",
            "grid": g,
            "address": f"{h + 1}号楼",
            "head_name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "tags": ["elderly"],
            "care_tier": rng.choice(tiers),
        }
        for g in grids
        for h in range(shape.households_per_grid)
    ]
    supervisors = [{"id": "sup-sim", "name": "区网格中心", "unit": "sim"}]
    return {
        "units": units,
        "workers": workers,
        "supervisors": supervisors,
        "households": households,
    }


@dataclass
class Truth:
    """What really happened in the week."""

    missed: set[str] = field(default_factory=set)
    """Workers with fewer than 3 patrols of at least 4 h."""
    unvisited: set[str] = field(default_factory=set)
    """High-risk households nobody met during the week."""


@dataclass
class Phone:
    worker_id: str
    grid_id: str
    skew_ms: int
    patrols: list[tuple[int, int]] = field(default_factory=list)
    """(true start, duration) of each patrol."""
    visits: list[tuple[str, str, int, str, str]] = field(default_factory=list)
    """(household, note id, true visit time, outcome, text); a note id can be on two phones."""


HIGH_RISK_CYCLE_MS = 7 * DAY_MS
"""The default visit cycle of high-risk households (the truth assumes default settings)."""


def plan_week(doc: dict[str, Any], week_start_ms: int, seed: int = 1) -> tuple[list[Phone], Truth]:
    """Each worker's week: about 15 % make too few patrols, 10 % make one too short; the others
    make 3–5 of 4–6 h. Visits: most households are visited once, some high-risk ones are not,
    or nobody is home. ``Truth.unvisited`` holds the high-risk households nobody met; which are
    overdue depends on when they are judged (:func:`overdue_at`)."""
    rng = random.Random(seed)
    truth = Truth()
    phones = []
    for worker in doc["workers"]:
        skew = rng.choice(
            [0, 0, 0, rng.randint(-600_000, 600_000), rng.randint(-7_200_000, 7_200_000)]
        )
        phone = Phone(worker["id"], worker["grids"][0], skew)
        roll = rng.random()
        days = rng.sample(range(7), 5)
        if roll < 0.15:
            count, short = rng.randint(0, 2), 0
        elif roll < 0.25:
            count, short = 3, 1
        else:
            count, short = rng.randint(3, 5), 0
        for n, day in enumerate(days[:count]):
            hours = rng.uniform(2.0, 3.9) if n < short else rng.uniform(4.0, 6.0)
            start = (
                week_start_ms
                + day * DAY_MS
                + rng.randint(7, 12) * HOUR_MS
                + rng.randint(0, 59) * MINUTE_MS
            )
            phone.patrols.append((start, int(hours * HOUR_MS)))
        if count - short < 3:
            truth.missed.add(worker["id"])
        phones.append(phone)
    by_grid: dict[str, list[Phone]] = {}
    for phone, worker in zip(phones, doc["workers"], strict=True):
        for grid in worker["grids"]:
            by_grid.setdefault(grid, []).append(phone)
    for household in doc["households"]:
        visitors = by_grid.get(household["grid"])
        if not visitors:
            if household["care_tier"] == "high_risk":
                truth.unvisited.add(household["id"])
            continue
        roll = rng.random()
        high = household["care_tier"] == "high_risk"
        if roll < 0.2 and high:
            truth.unvisited.add(household["id"])
            continue
        when = week_start_ms + rng.randint(0, 6) * DAY_MS + rng.randint(9, 17) * HOUR_MS
        if roll < 0.3 and high:  # nobody home: a visit that does not count
            visitor, outcome = rng.choice(visitors), "not_home"
            truth.unvisited.add(household["id"])
        else:
            visitor, outcome = rng.choice(visitors), "met"
        note_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        visitor.visits.append((household["id"], note_id, when, outcome, rng.choice(NOTES)))
        others = [v for v in visitors if v is not visitor]
        if others and rng.random() < 0.3:
            # Both workers of the grid write up the same visit, each offline: one note, two
            # concurrent edits (the texts are both kept; the server merges).
            other = rng.choice(others)
            other.visits.append((household["id"], note_id, when, outcome, rng.choice(NOTES)))
    return phones, truth


def overdue_at(doc: dict[str, Any], phones: list[Phone], truth: Truth, judged_ms: int) -> set[str]:
    """The high-risk households overdue at ``judged_ms`` under the default weekly cycle: nobody
    met them, or the last meeting was more than a cycle before."""
    high = {h["id"] for h in doc["households"] if h["care_tier"] == "high_risk"}
    met: dict[str, int] = {}
    for phone in phones:
        for household, _, when, outcome, _ in phone.visits:
            if outcome == "met":
                met[household] = max(met.get(household, 0), when)
    late = {h for h, when in met.items() if h in high and judged_ms > when + HIGH_RISK_CYCLE_MS}
    return (truth.unvisited & high) | late


class Faulty(httpx.AsyncBaseTransport):
    """Network faults for one phone: replies lost after the server committed, refused
    connections. Their order depends only on the fault seed."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rng: random.Random, rate: float) -> None:
        self.inner = inner
        self.rng = rng
        self.rate = rate
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.rate / 2:
            raise httpx.ConnectError("no signal", request=request)
        response = await self.inner.handle_async_request(request)
        if roll < self.rate and request.url.path == "/v1/sync/push":
            await response.aread()
            self.lost += 1
            raise httpx.ReadError("signal lost", request=request)
        return response


@dataclass
class Result:
    phones: int = 0
    checkins: int = 0
    notes: int = 0
    replies_lost: int = 0
    duplicates_absorbed: int = 0
    conflicts_merged: int = 0


ENROL_CONCURRENCY = 4
"""Phones enrolling at once: below the server's per-address limit of attempts in progress."""


async def play(
    transport: httpx.AsyncBaseTransport,
    base_url: str,
    supervisor_token: str,
    phones: list[Phone],
    *,
    now: Callable[[], int],
    fault_seed: int = 1,
    fault_rate: float = 0.1,
    concurrency: int = 16,
    progress: Callable[[int], Awaitable[None] | None] | None = None,
) -> Result:
    """Enrol a phone per worker, record the week offline, then sync every phone (some twice,
    some in several batches), with faults; returns what the phones saw."""
    rng = random.Random(fault_seed)
    result = Result(phones=len(phones))
    gate = asyncio.Semaphore(concurrency)
    # Enrolments from one address stay under the server's guessing limit, which counts the
    # attempts in progress (PATROLSYNC_ENROL_FAILURES_PER_CLIENT, 10 by default).
    enrolling = asyncio.Semaphore(ENROL_CONCURRENCY)
    supervisor = {"Authorization": f"Bearer {supervisor_token}", "Patrolsync-Protocol": "1"}
    seeds = {p.worker_id: rng.randrange(2**32) for p in phones}

    async def one(phone: Phone) -> None:
        async with gate:
            rng_phone = random.Random(seeds[phone.worker_id])
            acting: list[int] = []  # the simulated moment of an action in the past, if any
            faults = Faulty(transport, rng_phone, 0.0)  # enrolment on a good signal
            async with httpx.AsyncClient(transport=faults, base_url=base_url, timeout=60) as http:
                code = await http.post(
                    "/v1/enrolments", json={"worker_id": phone.worker_id}, headers=supervisor
                )
                code.raise_for_status()

                async def quick(_: float) -> None:
                    await asyncio.sleep(0)

                device = DeviceClient(
                    http,
                    LocalStore(),
                    f"sim-{phone.worker_id}",
                    clock=lambda: (acting[0] if acting else now()) + phone.skew_ms,
                    sleep=quick,
                    rng=random.Random(seeds[phone.worker_id]),
                    backoff=Backoff(attempts=12),
                )
                async with enrolling:
                    await device.enrol(code.json()["code"])
                await device.handshake()
                faults.rate = fault_rate
                for start, duration in phone.patrols:
                    device.record_checkin(
                        phone.grid_id,
                        start + phone.skew_ms,
                        start + duration + phone.skew_ms,
                        elapsed_ms=duration,
                        boot_id=f"boot-{phone.worker_id}",
                        visit_count=2,
                    )
                for household, note_id, when, outcome, text in phone.visits:
                    fields = {
                        "visited_ms": when,
                        "method": "in_person",
                        "outcome": outcome,
                        "text": text,
                    }
                    # The note is written at the visit (its clock says so), synced later.
                    acting[:] = [when]
                    device.edit_note(household, fields, note_id=note_id)
                    acting.clear()
                report = await device.sync()
                result.checkins += len(phone.patrols)
                result.notes += len(phone.visits)
                result.replies_lost += faults.lost
                result.duplicates_absorbed += report[0].replayed + report[0].duplicate
                result.conflicts_merged += report[0].merged
                if progress is not None:
                    done = progress(1)
                    if done is not None:
                        await done

    await asyncio.gather(*(one(p) for p in phones))
    return result
