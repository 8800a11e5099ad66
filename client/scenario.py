"""Several weeks of a district, planned up front: every phone's patrols, visits and incidents,
and the moments (stops) at which the simulated clock halts for phones to sync.

A week ``k`` has five stops, in local (Beijing) time:

========== ======================= =================================================
name       when                    what happens
========== ======================= =================================================
``mid``    Thursday 20:00          phones sync what they recorded so far (the at-risk
                                   checkpoint, Thursday 18:00, has passed)
``end``    Monday 06:00 (next)     phones sync the rest of the week
``late``   Tuesday 06:00           late phones sync (within the 48 h grace)
``grace``  Wednesday 06:00         nobody syncs: the grace is over, silent weeks are final
``very``   Wednesday 06:01         very late phones sync (within the 7-day lateness)
========== ======================= =================================================

plus one stop before everything (``enrol``, Monday 01:00 of the first week), where every phone
is handed out, and one after everything (``judged``, the Wednesday after the last week at
21:00), where nobody syncs and the truth is judged. The stops keep every threshold clear: no two
stops are 24 h, 48 h, 72 h or a whole number of weeks apart where an alert opened at one could
be judged at the other at the threshold itself, the last one included (it is 15 h after the last
``very`` stop and 6 days 1 h after the last ``mid`` stop; ages of whole weeks would sit exactly
on the escalation thresholds). At each stop the demo syncs the phones due, waits for the worker,
runs the sweeps and lets the supervisors act; :mod:`client.oracle` replays the same stops to say
which alert must exist afterwards. Incidents come at known rates, each at least once a week:
patrols mostly outside the grid, mock locations, impossible speeds, routes that never moved, a
patrol left running (implausible duration, half of them amended later), overlapping patrols, a
patrol recorded while the phone's clock was a day ahead (future event), patrols stopped too
early and amended later, follow-ups left open (half closed days later), phones that sync late or
very late, a patrol recorded for a second worker on a phone while its owner patrols with it (a
shared phone), and in the last week a phone that falls silent for good. From the middle week
on, the first street counts patrols of 3 h (a changed unit setting).

Everything depends only on ``seed`` (the network's faults are the fleet's business).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from client import names
from client.simulate import Phone, plan_week
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS, WEEK_MS

TZ = ZoneInfo("Asia/Shanghai")

STOPS = (
    ("mid", 3 * DAY_MS + 20 * HOUR_MS),
    ("end", WEEK_MS + 6 * HOUR_MS),
    ("late", WEEK_MS + DAY_MS + 6 * HOUR_MS),
    ("grace", WEEK_MS + 2 * DAY_MS + 6 * HOUR_MS),
    ("very", WEEK_MS + 2 * DAY_MS + 6 * HOUR_MS + MINUTE_MS),
)
"""Each week's stops: name and offset from the week's start."""
JUDGED_AFTER_MS = 2 * DAY_MS + 21 * HOUR_MS
"""The last stop, this long after the last week's end (Wednesday 21:00)."""
ENROL_AT_MS = HOUR_MS
"""The phones are handed out this long after the first week starts."""
CHANGED_SETTING = {"quota_min_patrol_ms": 3 * HOUR_MS}
"""The first street's new setting, from the middle week's ``end`` stop on."""
RATES = {
    "outside_grid": 0.02,
    "mock_location": 0.01,
    "impossible_speed": 0.01,
    "never_moved": 0.01,
    "left_running": 0.015,
    "overlap": 0.02,
    "future": 0.005,
    "stopped_early": 0.02,
    "late": 0.04,
    "very_late": 0.04,
    "shared_phone": 0.005,
}
"""Share of the workers each incident befalls every week (at least one worker)."""
SIMULATED_RULES = (
    "quota_missed",
    "quota_at_risk",
    "visit_overdue",
    "follow_up_open",
    "overlapping_patrols",
    "implausible_duration",
    "outside_grid",
    "future_event",
    "mock_location",
    "impossible_speed",
    "never_moved",
    "device_silent",
    "shared_device",
)
"""The rules the scenario exercises: every rule of the worker."""
FOLLOW_UP_RATE = 0.02
"""Share of the met visits that leave a follow-up open (half of them closed days later)."""


def week_label(ms: int) -> str:
    """The ISO week (Beijing time) of the instant ``ms``, as ``YYYY-Www``."""
    iso = datetime.fromtimestamp(ms / 1000, TZ).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def local_minute(ms: int) -> str:
    """The local (Beijing) minute of ``ms``, as ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromtimestamp(ms / 1000, TZ).strftime("%Y-%m-%dT%H:%M")


def _route(rng: random.Random, **odd: Any) -> dict[str, Any]:
    """A patrol's route summary on foot or bicycle inside its grid, with ``odd`` overrides."""
    route = {
        "points": rng.randint(60, 300),
        "distance_m": round(rng.uniform(2_500, 9_000), 1),
        "inside_share": round(rng.uniform(0.75, 1.0), 3),
        "max_speed_mps": round(rng.uniform(1.2, 6.0), 2),
        "mock_location": False,
    }
    route.update(odd)
    return route


@dataclass
class Patrol:
    key: str
    """Stable within the plan (``worker:week:n``)."""
    grid_id: str
    start_ms: int
    """True start."""
    elapsed_ms: int
    """As the phone's monotonic clock recorded it."""
    route: dict[str, Any]
    ahead_ms: int = 0
    """The phone's wall clock ran this far ahead while it recorded the patrol."""
    amend_ms: int | None = None
    """The true duration, sent later as an amendment (the recording was wrong)."""
    boot: str | None = None
    """The boot of the phone it was recorded on, when not its worker's own phone."""

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.elapsed_ms


@dataclass
class Visit:
    household: str
    note_id: str
    when_ms: int
    outcome: str
    text: str
    needs: str = ""
    """A follow-up is left open (``follow_up`` set) when not empty."""
    close_after_ms: int | None = None
    """The follow-up is closed at the phone's first sync this long after the visit."""
    shared: bool = False
    """A second phone writes up the same visit (the same note id)."""


@dataclass
class PhonePlan:
    worker_id: str
    grid_id: str
    skew_ms: int = 0
    """How far the phone's wall clock is ahead of the true time (its own, for the whole run)."""
    patrols: list[Patrol] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    syncs: list[int] = field(default_factory=list)
    """The stops (times) at which the phone syncs, ascending."""

    @property
    def device_id(self) -> str:
        return f"sim-{self.worker_id}"

    def boot_of(self, patrol: Patrol) -> str:
        """The boot (``boot_id``) during which ``patrol`` was recorded: the phone's own (one
        boot for the whole run), or another phone's."""
        return patrol.boot or f"boot-{self.worker_id}"

    def sync_after(self, ms: int) -> int | None:
        """The phone's first sync at or after ``ms`` (None: none is planned)."""
        return next((s for s in self.syncs if s >= ms), None)

    def amended_at(self, patrol: Patrol, synced_ms: int) -> int | None:
        """When a wrongly recorded patrol is amended: at the phone's first sync a day after the
        recording reached the server at ``synced_ms`` (None: nothing to amend, or no such
        sync)."""
        return None if patrol.amend_ms is None else self.sync_after(synced_ms + DAY_MS)


@dataclass(frozen=True)
class Stop:
    at_ms: int
    name: str
    week: str
    """The label of the week the stop belongs to."""


@dataclass
class Scenario:
    weeks: list[tuple[str, int, int]]
    """(label, start, end) of each week played."""
    stops: list[Stop]
    phones: dict[str, PhonePlan]
    since_ms: int
    """When the district was imported (everything came under care)."""
    setting_unit: str = ""
    setting_at_ms: int | None = None

    def stop_of(self, ms: int) -> Stop:
        """The stop at or most recently before ``ms``."""
        return max((s for s in self.stops if s.at_ms <= ms), key=lambda s: s.at_ms)


def supervisor_decision(rule: str, subject: str, period: str) -> str:
    """What the supervisors do with a live quota miss they see: ``ack``, ``resolve`` or ``""``
    (stable, so the truth knows it): 3 in 10 acknowledged, 1 in 10 resolved."""
    if rule != "quota_missed":
        return ""
    roll = zlib.crc32(f"{subject}|{period}".encode()) % 10
    return "ack" if roll < 3 else "resolve" if roll == 3 else ""


def _pick(
    rng: random.Random, pool: list[str], rate: float, taken: set[str], first: list[str]
) -> list[str]:
    """About ``rate`` of ``pool`` (at least one), none already taken; one of ``first`` (when
    any is free) among them."""
    free = [w for w in pool if w not in taken]
    wanted = min(len(free), max(1, round(rate * len(pool))))
    lead = [w for w in first if w not in taken][:1]
    chosen = lead + rng.sample([w for w in free if w not in lead], max(0, wanted - len(lead)))
    taken.update(chosen)
    return chosen


def plan(doc: dict[str, Any], first_week_ms: int, weeks: int, seed: int) -> Scenario:
    """``weeks`` weeks of ``doc``'s district from the week starting at ``first_week_ms``."""
    rng = random.Random(f"scenario:{seed}")
    workers = [w["id"] for w in doc["workers"]]
    phones = {w["id"]: PhonePlan(w["id"], w["grids"][0]) for w in doc["workers"]}
    stops = [Stop(first_week_ms + ENROL_AT_MS, "enrol", week_label(first_week_ms))]
    spans = []
    for k in range(weeks):
        start = first_week_ms + k * WEEK_MS
        label = week_label(start)
        spans.append((label, start, start + WEEK_MS))
        at = {name: start + offset for name, offset in STOPS}
        stops += [Stop(t, name, label) for name, t in at.items()]
        base, _ = plan_week(doc, start, seed=seed + k)
        silent = {workers[-1]} if weeks > 1 and k == weeks - 1 else set()
        taken = set(silent)
        picks = {
            kind: _pick(rng, workers, rate, taken, _eligible(kind, base, rng))
            for kind, rate in RATES.items()
        }
        for phone in base:
            mine = phones[phone.worker_id]
            if k == 0:
                mine.skew_ms = phone.skew_ms
            for m, (t0, duration) in enumerate(phone.patrols):
                mine.patrols.append(
                    Patrol(
                        f"{phone.worker_id}:{label}:{m}", phone.grid_id, t0, duration, _route(rng)
                    )
                )
            for household, note_id, when, outcome, text in phone.visits:
                mine.visits.append(Visit(household, note_id, when, outcome, text))
            w = phone.worker_id
            if w in silent:
                continue
            if w in picks["very_late"]:
                mine.syncs.append(at["very"])
            elif w in picks["late"]:
                mine.syncs += [at["mid"], at["late"]]
            else:
                mine.syncs += [at["mid"], at["end"]]
        for kind, chosen in picks.items():
            for w in chosen if kind != "shared_phone" else ():
                _incident(rng, kind, phones[w], label, start, at)
        lent = picks["shared_phone"]
        free = [w for w in workers if w not in silent and w not in lent]
        for owner, other in zip(lent, rng.sample(free, len(lent)), strict=True):
            _shared_phone(rng, phones[owner], phones[other], label)
        _follow_ups(rng, phones, label)
    for mine in phones.values():
        mine.syncs.sort()
        mine.patrols.sort(key=lambda p: p.start_ms)
        mine.visits.sort(key=lambda v: v.when_ms)
    last = first_week_ms + weeks * WEEK_MS
    stops.append(Stop(last + JUDGED_AFTER_MS, "judged", week_label(last - 1)))
    stops.sort(key=lambda s: s.at_ms)
    scenario = Scenario(spans, stops, phones, first_week_ms)
    if weeks > 1:
        middle = spans[weeks // 2]
        scenario.setting_unit = doc["units"][0]["children"][0]["id"]
        scenario.setting_at_ms = middle[1] + dict(STOPS)["end"] - WEEK_MS
    return scenario


def _eligible(kind: str, base: list[Phone], rng: random.Random) -> list[str]:
    """Workers whose week can carry the incident ``kind``, shuffled: a full-length patrol to
    alter, any patrol to overlap; a very late phone that met the quota (its late data must turn
    the miss raised meanwhile false)."""
    if kind in ("overlap", "future", "shared_phone"):
        found = [p.worker_id for p in base if p.patrols]
    elif kind in ("late", "very_late"):
        found = [p.worker_id for p in base if sum(d >= 4 * HOUR_MS for _, d in p.patrols) >= 3]
    else:
        found = [p.worker_id for p in base if any(d >= 4 * HOUR_MS for _, d in p.patrols)]
    rng.shuffle(found)
    return found


def _incident(
    rng: random.Random, kind: str, phone: PhonePlan, label: str, start: int, at: dict[str, int]
) -> None:
    """Give ``phone``'s week ``label`` the incident ``kind`` (late syncs are planned above)."""
    week = [p for p in phone.patrols if p.key.split(":")[1] == label]
    full = [p for p in week if p.elapsed_ms >= 4 * HOUR_MS]
    odd: dict[str, dict[str, Any]] = {
        "outside_grid": {"inside_share": round(rng.uniform(0.05, 0.35), 3)},
        "mock_location": {"mock_location": True},
        "impossible_speed": {"max_speed_mps": round(rng.uniform(28, 60), 1)},
        "never_moved": {"distance_m": round(rng.uniform(3, 40), 1)},
    }
    if kind in odd and full:
        rng.choice(full).route.update(odd[kind])
    elif kind == "left_running" and full:
        p = rng.choice(full)
        amend = rng.random() < 0.5
        p.amend_ms = p.elapsed_ms if amend else None
        p.elapsed_ms = int(rng.uniform(13, 16) * HOUR_MS)  # the app was never stopped
    elif kind == "stopped_early" and full:
        p = rng.choice(full)
        p.amend_ms = p.elapsed_ms
        p.elapsed_ms = int(rng.uniform(1.5, 3.0) * HOUR_MS)
    elif kind == "overlap" and week:
        p = rng.choice(week)
        duration = int(rng.uniform(1.0, 2.0) * HOUR_MS)
        key = f"{phone.worker_id}:{label}:x"
        phone.patrols.append(Patrol(key, p.grid_id, p.start_ms + HOUR_MS, duration, _route(rng)))
    elif kind == "future" and at["mid"] in phone.syncs:
        day = rng.randint(0, 3)  # Monday to Thursday, 02:00-03:00, the clock four-day(s) ahead
        key = f"{phone.worker_id}:{label}:f"
        t0 = start + day * DAY_MS + 2 * HOUR_MS
        phone.patrols.append(
            Patrol(key, phone.grid_id, t0, HOUR_MS, _route(rng), ahead_ms=(4 - day) * DAY_MS)
        )


def _shared_phone(rng: random.Random, owner: PhonePlan, other: PhonePlan, label: str) -> None:
    """While ``owner`` patrols, a patrol of ``other`` is recorded on the owner's phone (a second
    enrolment on it: its own device id, the same boot), starting a third of the way into the
    owner's patrol and lasting 1-2 h: one phone used by two workers at once."""
    week = [p for p in owner.patrols if p.key.split(":")[1] == label]
    if not week:
        return
    p = rng.choice(week)
    duration = int(rng.uniform(1.0, 2.0) * HOUR_MS)
    key = f"{other.worker_id}:{label}:s"
    boot = owner.boot_of(p)
    other.patrols.append(
        Patrol(key, other.grid_id, p.start_ms + p.elapsed_ms // 3, duration, _route(rng), boot=boot)
    )


def _follow_ups(rng: random.Random, phones: dict[str, PhonePlan], label: str) -> None:
    """Leave follow-ups open on some of the week's met visits (two at least, one closed later).

    Only phones whose clock is not behind write them: a follow-up opens at the clock of the edit
    that set it, and a phone that is behind takes a later clock from what it last pulled (other
    phones' edits, up to 2 h ahead), which would move the 48 h threshold by an unknown amount.
    A phone's own clock is within 2 h ahead, so the moment stays between 09:00 and 19:00, clear
    of every stop two days later (06:00-06:10 and 20:00)."""
    noted: dict[str, int] = {}
    for phone in phones.values():
        for v in phone.visits:
            noted[v.note_id] = noted.get(v.note_id, 0) + 1
    met = [
        v
        for phone in phones.values()
        for v in phone.visits
        if v.outcome == "met"
        and noted[v.note_id] == 1
        and week_label(v.when_ms) == label
        and phone.skew_ms >= 0
    ]
    for phone in phones.values():
        for v in phone.visits:
            v.shared = noted[v.note_id] > 1
    chosen = rng.sample(met, min(len(met), max(2, round(FOLLOW_UP_RATE * len(met)))))
    for n, v in enumerate(chosen):
        v.needs = rng.choice(names.NEEDS)
        v.close_after_ms = 3 * DAY_MS if n % 2 == 0 else None
