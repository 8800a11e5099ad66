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
from client.district import JINTAI, SMALL, Shape, district
from client.store import LocalStore
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS

__all__ = [
    "JINTAI",
    "SMALL",
    "Fleet",
    "Phone",
    "Result",
    "Shape",
    "Truth",
    "district",
    "overdue_at",
    "plan_week",
    "play",
]


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
CYCLES_MS = {"high_risk": HIGH_RISK_CYCLE_MS, "key": 31 * DAY_MS, "general": 92 * DAY_MS}
"""The default visit cycle of each care tier."""


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


def overdue_at(
    doc: dict[str, Any],
    phones: list[Phone],
    truth: Truth,
    judged_ms: int,
    since_ms: int | None = None,
) -> set[str]:
    """The households overdue at ``judged_ms`` under the default cycles (:data:`CYCLES_MS`):
    the last meeting, or coming under care at ``since_ms`` when nobody met them, lies more
    than the tier's cycle before; plus the high-risk households ``truth`` says nobody met.
    ``phones`` may hold several weeks' phones. Without ``since_ms`` the households came under
    care just over a high-risk cycle before ``judged_ms`` (a single past week played)."""
    since = judged_ms - HIGH_RISK_CYCLE_MS - 1 if since_ms is None else since_ms
    tier = {h["id"]: h["care_tier"] for h in doc["households"]}
    last = dict.fromkeys(tier, since)
    for phone in phones:
        for household, _, when, outcome, _ in phone.visits:
            if outcome == "met":
                last[household] = max(last[household], when)
    late = {h for h, when in last.items() if judged_ms > when + CYCLES_MS[tier[h]]}
    high = {h for h, t in tier.items() if t == "high_risk"}
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
    amendments: int = 0
    notes: int = 0
    replies_lost: int = 0
    duplicates_absorbed: int = 0
    conflicts_merged: int = 0

    def add(self, other: Result) -> None:
        """Add another week's figures (``phones`` is the most phones that played a week)."""
        self.phones = max(self.phones, other.phones)
        self.checkins += other.checkins
        self.amendments += other.amendments
        self.notes += other.notes
        self.replies_lost += other.replies_lost
        self.duplicates_absorbed += other.duplicates_absorbed
        self.conflicts_merged += other.conflicts_merged


ENROL_CONCURRENCY = 4
"""Phones enrolling at once: below the server's per-address limit of attempts in progress."""


@dataclass
class _Handset:
    """One worker's phone across weeks: enrolled once, its faults and skew its own."""

    device: DeviceClient
    faults: Faulty
    skew_ms: int = 0
    acting: list[int] = field(default_factory=list)
    """The simulated moment of an action in the past, if any."""

    async def sync(self, result: Result) -> None:
        """Sync what the phone holds, adding what the network and the server did to ``result``."""
        lost = self.faults.lost
        report = await self.device.sync()
        result.replies_lost += self.faults.lost - lost
        result.duplicates_absorbed += report[0].replayed + report[0].duplicate
        result.conflicts_merged += report[0].merged


async def told(progress: Callable[[int], Awaitable[None] | None] | None) -> None:
    """One more done, for a progress callback that may be a coroutine function."""
    if progress is not None:
        done = progress(1)
        if done is not None:
            await done


class Fleet:
    """The district's phones, kept across weeks: each worker's phone enrols on its first week
    and then records and syncs every week it is given (:meth:`week`). Faults depend only on
    ``fault_seed`` and the worker; ``now`` is the (possibly simulated) time of day."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        base_url: str,
        supervisor_token: str,
        *,
        now: Callable[[], int],
        fault_seed: int = 1,
        fault_rate: float = 0.1,
        concurrency: int = 16,
    ) -> None:
        self.transport = transport
        self.base_url = base_url
        self.now = now
        self.fault_seed = fault_seed
        self.fault_rate = fault_rate
        self.gate = asyncio.Semaphore(concurrency)
        # Enrolments from one address stay under the server's guessing limit, which counts the
        # attempts in progress (PATROLSYNC_ENROL_FAILURES_PER_CLIENT, 10 by default).
        self.enrolling = asyncio.Semaphore(ENROL_CONCURRENCY)
        self.supervisor = {
            "Authorization": f"Bearer {supervisor_token}",
            "Patrolsync-Protocol": "1",
        }
        self.handsets: dict[str, _Handset] = {}
        self.clients: list[httpx.AsyncClient] = []

    async def handset(self, worker_id: str) -> _Handset:
        """The worker's phone, enrolled on first use."""
        return self.handsets.get(worker_id) or await self._enrol(worker_id)

    def _seed(self, worker_id: str) -> int:
        return random.Random(f"{self.fault_seed}:{worker_id}").randrange(2**32)

    async def _enrol(self, worker_id: str) -> _Handset:
        seed = self._seed(worker_id)
        faults = Faulty(self.transport, random.Random(seed), 0.0)  # enrolment on a good signal
        http = httpx.AsyncClient(transport=faults, base_url=self.base_url, timeout=60)
        self.clients.append(http)
        code = await http.post(
            "/v1/enrolments", json={"worker_id": worker_id}, headers=self.supervisor
        )
        code.raise_for_status()

        async def quick(_: float) -> None:
            await asyncio.sleep(0)

        handset: _Handset

        def clock() -> int:
            return (handset.acting[0] if handset.acting else self.now()) + handset.skew_ms

        handset = _Handset(
            DeviceClient(
                http,
                LocalStore(),
                f"sim-{worker_id}",
                clock=clock,
                sleep=quick,
                rng=random.Random(seed),
                backoff=Backoff(attempts=12),
            ),
            faults,
        )
        async with self.enrolling:
            await handset.device.enrol(code.json()["code"])
        await handset.device.handshake()
        self.handsets[worker_id] = handset
        return handset

    async def week(
        self,
        phones: list[Phone],
        progress: Callable[[int], Awaitable[None] | None] | None = None,
    ) -> Result:
        """Record each phone's week offline, then sync every phone (with faults); returns what
        the phones saw this week."""
        result = Result(phones=len(phones))

        async def one(phone: Phone) -> None:
            async with self.gate:
                handset = self.handsets.get(phone.worker_id) or await self._enrol(phone.worker_id)
                device = handset.device
                handset.skew_ms = phone.skew_ms
                handset.faults.rate = self.fault_rate
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
                    handset.acting[:] = [when]
                    device.edit_note(household, fields, note_id=note_id)
                    handset.acting.clear()
                await handset.sync(result)
                result.checkins += len(phone.patrols)
                result.notes += len(phone.visits)
                await told(progress)

        await asyncio.gather(*(one(p) for p in phones))
        return result

    async def close(self) -> None:
        for http in self.clients:
            await http.aclose()
        self.clients.clear()


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
    fleet = Fleet(
        transport,
        base_url,
        supervisor_token,
        now=now,
        fault_seed=fault_seed,
        fault_rate=fault_rate,
        concurrency=concurrency,
    )
    try:
        return await fleet.week(phones, progress)
    finally:
        await fleet.close()
