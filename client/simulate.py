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

from client import names
from client.device import Backoff, DeviceClient
from client.store import LocalStore
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS


@dataclass(frozen=True)
class Shape:
    """A district's size. ``JINTAI`` is the district of the domain notes (753 workers for about
    1,300 grids in 59 communities: most look after two grids of their community)."""

    communities: int
    grids_per_community: int
    workers: int
    households_per_grid: int
    streets: int = 0
    """Street offices; 0: one for every six communities (at least one)."""


JINTAI = Shape(communities=59, grids_per_community=22, workers=753, households_per_grid=12)
SMALL = Shape(communities=2, grids_per_community=3, workers=8, households_per_grid=4)

COMMUNITIES_PER_STREET = 6
TIERS = ("high_risk",) * 2 + ("key",) * 3 + ("general",) * 5
"""Care tiers drawn for households: 2 in 10 high-risk, 3 key, 5 general."""
TAGS = {
    "high_risk": (["elderly", "living_alone"], ["elderly", "empty_nest"], ["left_behind"]),
    "key": (["elderly", "disability"], ["elderly", "dementia"], ["extreme_poverty"], ["orphan"]),
    "general": ([], ["elderly"], ["difficulty"]),
}
"""Tags that fit each tier (DOMAIN.md: high-risk = 80+ living alone, empty-nest or left-behind;
key = 60+ with disability or dementia, 特困, orphans)."""


def person(rng: random.Random) -> str:
    """A plausible Chinese name: a surname and a one- or two-character given name."""
    return rng.choice(names.SURNAMES) + rng.choice(names.GIVEN)


def community_workers(shape: Shape) -> list[int]:
    """How many workers each community has: the district's workers spread evenly, the first
    communities taking one more when they do not divide."""
    base, extra = divmod(shape.workers, shape.communities)
    return [base + (c < extra) for c in range(shape.communities)]


def district(shape: Shape, seed: int = 1) -> dict[str, Any]:
    """An import document: 金台区 → streets → communities → grids, with names after the domain
    notes; workers, each looking after grids of **one** community (every grid has a worker; one
    worker in ten also shares a neighbour's grid, so some notes are written by two phones);
    supervisors (the district centre, each street office, each community secretary, each grid
    leader); households with addresses (…号楼…单元…室), heads of household and care tiers.

    Ids are ASCII and stable (``sim``, ``s0``, ``c00``, ``c00-g00``, ``c00-g00-h00``,
    ``w0000``, ``sup-…``); the names carry the Chinese. The document depends only on ``shape``
    and ``seed``."""
    rng = random.Random(seed)
    streets = shape.streets or max(1, shape.communities // COMMUNITIES_PER_STREET)
    cids = [f"c{c:02d}" for c in range(shape.communities)]
    cnames = [names.community_name(c) for c in range(shape.communities)]
    grids = {cid: [f"{cid}-g{g:02d}" for g in range(shape.grids_per_community)] for cid in cids}
    gname = {
        gid: names.grid_name(cname, g)
        for cid, cname in zip(cids, cnames, strict=True)
        for g, gid in enumerate(grids[cid])
    }
    units = [
        {
            "id": "sim",
            "kind": "district",
            "name": names.DISTRICT,
            "code": "610303",
            "children": [
                {
                    "id": f"s{s}",
                    "kind": "street",
                    "name": names.street_name(s),
                    "code": f"610303{s + 1:03d}",
                    "children": [
                        {
                            "id": cid,
                            "kind": "community",
                            "name": cname,
                            "children": [
                                {"id": g, "kind": "grid", "name": gname[g]} for g in grids[cid]
                            ],
                        }
                        for c, (cid, cname) in enumerate(zip(cids, cnames, strict=True))
                        if c % streets == s
                    ],
                }
                for s in range(streets)
            ],
        }
    ]
    workers: list[dict[str, Any]] = []
    for cid, count in zip(cids, community_workers(shape), strict=True):
        own = [grids[cid][j::count] or [grids[cid][j % len(grids[cid])]] for j in range(count)]
        for j in range(0, count - 1, 10):
            own[j] = [*own[j], *(g for g in own[j + 1][:1] if g not in own[j])]
        workers += [
            {"id": f"w{len(workers) + j:04d}", "name": person(rng), "grids": own[j]}
            for j in range(count)
        ]
    supervisors = [{"id": "sup-sim", "name": f"{names.DISTRICT}网格化服务管理中心", "unit": "sim"}]
    supervisors += [
        {"id": f"sup-s{s}", "name": f"{names.street_name(s)}办{person(rng)}", "unit": f"s{s}"}
        for s in range(streets)
    ]
    supervisors += [
        {"id": f"sup-{cid}", "name": f"{cname}书记{person(rng)}", "unit": cid}
        for cid, cname in zip(cids, cnames, strict=True)
    ]
    supervisors += [
        {"id": f"sup-{g}", "name": f"{gname[g]}网格长{person(rng)}", "unit": g}
        for cid in cids
        for g in grids[cid]
    ]
    households = []
    for cid, cname in zip(cids, cnames, strict=True):
        for g, gid in enumerate(grids[cid]):
            compound = names.compound_name(cname, g)
            for h in range(shape.households_per_grid):
                tier = rng.choice(TIERS)
                households.append(
                    {
                        "id": f"{gid}-h{h:02d}",
                        "grid": gid,
                        "address": names.address(compound, h),
                        "head_name": person(rng),
                        "tags": list(rng.choice(TAGS[tier])),
                        "care_tier": tier,
                    }
                )
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
        texts = names.NOTES_MET if outcome == "met" else names.NOTES_NOT_HOME
        visitor.visits.append((household["id"], note_id, when, outcome, rng.choice(texts)))
        others = [v for v in visitors if v is not visitor]
        if others and rng.random() < 0.3:
            # Both workers of the grid write up the same visit, each offline: one note, two
            # concurrent edits (the texts are both kept; the server merges).
            other = rng.choice(others)
            other.visits.append((household["id"], note_id, when, outcome, rng.choice(texts)))
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
