"""Quota evaluation benchmark: one ISO week for every worker, against one plain SQL aggregate.

A measurement, never a test: it fails (exit code 1) only when the evaluation is wrong — a
verdict whose counts differ from the raw aggregate's, or a number of open ``quota_missed``
alerts other than the number of workers under quota — never on a missed target.

For each size (``--quick``: 100, 1,000 and 10,000 workers; otherwise 1,000, 10,000 and 100,000;
``--workers`` is always one of them):

1. Setup (untimed): the tables are emptied, then filled with asyncpg ``COPY`` (no HTTP): a unit
   tree (district → streets → communities → grids, two workers per grid), active workers with
   their ``worker_grid`` rows, one device per worker (enrolled before the week, synced past its
   end, so verdicts are final), ``--checkins-per-worker`` check-ins per worker in the week
   (durations around the 4 h threshold, a few percent amendments of earlier check-ins with a
   later HLC ``clock``, some moving a patrol across the week's boundary) and a tenth as many
   outside it (mostly the week before). Then ``VACUUM ANALYZE``, and one untimed evaluation of
   the first chunk and one untimed raw query (warm caches, prepared statements), whose verdicts
   and alerts are then removed.
2. eval: ``worker.evaluate.evaluate_weeks`` over all workers, in chunks of 500, one transaction
   each, ``--parallel`` chunks at a time (``worker.sweep._chunks``, as the sweep does), on a
   fresh state, at a time after the week's end and its grace period: final verdicts,
   ``quota_missed`` opened for those short.
3. raw: one SQL aggregate on a plain asyncpg connection computing the same counts from the same
   rows — each chain's effective version (``DISTINCT ON (root_id)`` by ``clock DESC NULLS
   LAST``), those started in the week, counted per worker.
4. check: every worker's ``week_verdict`` agrees with the aggregate, and there are as many open
   ``quota_missed`` alerts as workers with fewer than 3 counted patrols.

``ratio = raw_sql_s / eval_s`` at ``--workers`` workers is the figure of merit (target >= 0.5);
``per_worker_ms`` at each size shows whether the cost grows linearly. The last line of output is
one JSON object.

Usage: ``.venv/bin/python bench/quota.py [--quick] [--workers N] ...`` (see ``--help``).
"""

# ruff: noqa: E402 -- the project imports must follow the sys.path fix below.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as ``python bench/quota.py``, this file's folder heads sys.path, and ``bench/sync.py`` would
# shadow the project's ``sync`` package (which the server imports): drop that entry first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))  # for bench.common

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.common import (
    CpuProbe,
    database_urls,
    drop_database,
    log,
    minus,
    parent_of,
    recreate_database,
)
from rules.periods import Week, week
from rules.policy import DEFAULTS
from server.db import make_engine
from server.migrate import upgrade
from server.process import tune_gc
from server.settings import Settings
from server.store import alerts as alerts_store
from server.store import quota as quota_store
from server.store.alert_events import NewEvent
from worker import evaluate, sweep

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
TARGET_RATIO = 0.5
DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TZ = "Asia/Shanghai"
LABEL = "2026-W47"
NOW_AFTER_END_MS = 3 * DAY
"""The evaluation runs this long after the week's end: past the grace period (48 h), before the
lateness window closes (7 days)."""
WORKERS_PER_GRID = 2
GRIDS_PER_COMMUNITY = 50
COMMUNITIES_PER_STREET = 20
AMEND_SHARE = 0.04
SLACKER_SHARE = 0.15
BLOCK = 5_000
"""Workers generated and copied at a time (bounds the memory of the 100,000-worker size)."""
QUICK_SIZES = (100, 1_000, 10_000)
FULL_SIZES = (1_000, 10_000, 100_000)
OUTPUT_TABLES = ("week_verdict", "alert", "alert_event")
INPUT_TABLES = ("unit", "unit_setting", "worker", "worker_grid", "device", "checkin")

RAW_SQL = """
SELECT worker_id,
       count(*) FILTER (WHERE duration_ms >= $3) AS counted,
       count(*) AS patrols
FROM (
    SELECT DISTINCT ON (root_id) worker_id, started_ms, duration_ms
    FROM checkin
    ORDER BY root_id, clock DESC NULLS LAST
) AS effective
WHERE started_ms >= $1 AND started_ms < $2
GROUP BY worker_id
"""
"""Per worker: effective patrols (latest version of each chain by ``clock``, the original —
clock NULL — the earliest) that started in the week, and how many of them last >= 4 h."""

CHECKIN_COLUMNS = [
    "id",
    "worker_id",
    "device_id",
    "grid_id",
    "started_ms",
    "ended_ms",
    "device_started_ms",
    "device_ended_ms",
    "duration_ms",
    "duration_source",
    "elapsed_ms",
    "boot_id",
    "visit_count",
    "households",
    "route",
    "flags",
    "amends",
    "root_id",
    "clock",
    "reason",
    "skew_ms",
    "push_id",
    "received_ms",
    "txid",
    "seq",
]


class BenchError(RuntimeError):
    """The evaluation disagrees with the raw aggregate (or setup failed)."""


# ---------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Options:
    workers: int
    checkins_per_worker: int
    sizes: tuple[int, ...]
    quick: bool
    keep: bool
    json_out: Path | None
    pg_admin: str
    db_name: str
    repeat: int
    seed: int
    profile: Path | None
    parallel: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="bench/quota.py",
        description="Weekly quota evaluation of patrolsync vs one raw SQL aggregate.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="scaling sizes 100, 1,000 and 10,000 workers (default 1,000, 10,000 and 100,000)",
    )
    p.add_argument(
        "--workers", type=int, default=10_000, help="workers of the headline run (default 10,000)"
    )
    p.add_argument(
        "--checkins-per-worker",
        type=int,
        default=30,
        help="check-ins per worker in the week (default 30)",
    )
    p.add_argument(
        "--sizes",
        default=None,
        help="comma-separated worker counts of the scaling runs (overrides --quick's)",
    )
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--pg-admin", default=DEFAULT_ADMIN, help=f"admin URL (default {DEFAULT_ADMIN})")
    p.add_argument("--db-name", default="patrolsync_bench_quota", help="database to (re)create")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed runs per size on the same data (fresh verdicts and alerts each); "
        "the figures are the medians (default 1)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the generated data")
    p.add_argument(
        "--parallel",
        type=int,
        default=sweep.PARALLEL,
        help=f"chunks evaluated at once, as the sweep does (default {sweep.PARALLEL})",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="profile the first timed evaluation at --workers with cProfile, stats to this file",
    )
    a = p.parse_args(argv)
    if a.sizes is not None:
        try:
            sizes = tuple(int(s) for s in a.sizes.split(",") if s.strip())
        except ValueError:
            p.error("--sizes must be comma-separated integers")
    else:
        sizes = QUICK_SIZES if a.quick else FULL_SIZES
    for name, value in [
        ("--workers", a.workers),
        ("--checkins-per-worker", a.checkins_per_worker),
        ("--repeat", a.repeat),
        ("--parallel", a.parallel),
        *(("--sizes", s) for s in sizes),
    ]:
        if value < 1:
            p.error(f"{name} must be >= 1")
    return Options(
        workers=a.workers,
        checkins_per_worker=a.checkins_per_worker,
        sizes=tuple(sorted({*sizes, a.workers})),
        quick=a.quick,
        keep=a.keep,
        json_out=a.json_out,
        pg_admin=a.pg_admin,
        db_name=a.db_name,
        repeat=a.repeat,
        seed=a.seed,
        profile=a.profile,
        parallel=a.parallel,
    )


# ---------------------------------------------------------------- generated data


@dataclass(slots=True)
class Counts:
    """What a size's generated data holds."""

    workers: int = 0
    grids: int = 0
    week_rows: int = 0
    """Check-in rows (originals and amendments) that started in the week."""
    other_rows: int = 0
    """Check-in rows that started outside it."""
    amendments: int = 0

    @property
    def rows(self) -> int:
        return self.week_rows + self.other_rows


@dataclass(slots=True)
class Version:
    id: uuid.UUID
    started_ms: int
    clock: tuple[int, int] | None
    """(wall ms, counter) of an amendment's HLC; None for the original."""


@dataclass(slots=True)
class Chain:
    root: uuid.UUID
    versions: list[Version]

    def current(self) -> Version:
        """The effective version: the greatest clock (the original has none, it is the least)."""
        return max(self.versions, key=lambda v: v.clock or (-1, -1))


def _uuid7(rng: random.Random, ms: int) -> uuid.UUID:
    """A time-ordered UUID (version 7) made at ``ms``, as docs/protocol.md suggests devices use."""
    rand_a, rand_b = rng.getrandbits(12), rng.getrandbits(62)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)


def _span(rng: random.Random, long_share: float) -> int:
    """A patrol's duration: at least 4 h with probability ``long_share``, else under it."""
    if rng.random() < long_share:
        return 4 * HOUR if rng.random() < 0.05 else 4 * HOUR + rng.randrange(1, 45 * MINUTE)
    if rng.random() < 0.3:
        return 4 * HOUR - rng.randrange(1, MINUTE)  # just under the threshold
    return rng.randrange(30 * MINUTE, 4 * HOUR)


def worker_rows(
    rng: random.Random, index: int, wk: Week, per_worker: int, counts: Counts
) -> list[tuple[Any, ...]]:
    """Worker ``index``'s check-ins: ``per_worker`` in the week, a tenth as many outside it."""
    worker, device, grid = _worker_id(index), _device_id(index), _grid_id(index)
    long_share = rng.uniform(0.0, 0.08) if rng.random() < SLACKER_SHARE else rng.uniform(0.2, 0.7)
    week_ms = wk.end_ms - wk.start_ms
    push_id = _uuid7(rng, wk.end_ms)
    boot = f"boot-{device}"
    rows: list[tuple[Any, ...]] = []
    chains: list[Chain] = []

    def add(
        started: int,
        span: int,
        root: uuid.UUID | None,
        amends: uuid.UUID | None,
        clock: tuple[int, int] | None,
    ) -> uuid.UUID:
        ended = started + span
        # Made when the patrol ends, or when it is amended.
        row_id = _uuid7(rng, clock[0] if clock else ended)
        rows.append(
            (
                row_id,
                worker,
                device,
                grid,
                started,
                ended,
                started,
                ended,
                span,
                "monotonic",
                span,
                boot,
                len(rows) % 9,
                "[]",
                None,
                "[]",
                amends,
                root or row_id,
                f"{clock[0]:015d}-{clock[1]:05d}-{device}" if clock else None,
                "bench amendment" if amends else "",
                0,
                push_id,
                ended + MINUTE,
                1_000 + index,
                len(rows) + 1,
            )
        )
        if wk.start_ms <= started < wk.end_ms:
            counts.week_rows += 1
        else:
            counts.other_rows += 1
        return row_id

    def original(started: int) -> None:
        span = _span(rng, long_share)
        row_id = add(started, span, None, None, None)
        chains.append(Chain(row_id, [Version(row_id, started, None)]))

    def amendment() -> None:
        chain = rng.choice(chains)
        current = chain.current()
        if wk.start_ms <= current.started_ms < wk.end_ms:
            roll = rng.random()
            if roll < 0.85:
                started = current.started_ms  # a corrected duration
            elif roll < 0.95:
                started = wk.start_ms + rng.randrange(0, week_ms)  # a corrected start
            else:
                started = wk.start_ms - rng.randrange(1, 3 * HOUR)  # moved out of the week
        else:
            started = wk.start_ms + rng.randrange(0, 3 * HOUR)  # moved into the week
        latest = max((v.clock for v in chain.versions if v.clock), default=(current.started_ms, 0))
        if rng.random() < 0.15 and len(chain.versions) > 1:
            # A concurrent amendment from before the latest one, arriving late: it loses.
            clock = (latest[0] - rng.randrange(1, HOUR), rng.randrange(0, 100))
        else:
            clock = (latest[0] + rng.randrange(1, 2 * DAY), rng.randrange(0, 100))
        row_id = add(started, _span(rng, 0.5), chain.root, current.id, clock)
        chain.versions.append(Version(row_id, started, clock))
        counts.amendments += 1

    outside = max(1, per_worker // 10)
    for _ in range(outside):
        roll = rng.random()
        if roll < 0.05:
            started = wk.start_ms - 1  # the last instant before the week
        elif roll < 0.1:
            started = wk.end_ms  # the first instant of the next week
        elif roll < 0.2:
            started = wk.end_ms + rng.randrange(0, DAY)
        else:
            started = wk.start_ms - rng.randrange(1, week_ms)
        original(started)
    for _ in range(per_worker):
        if rng.random() < AMEND_SHARE:
            amendment()
            continue
        roll = rng.random()
        if roll < 0.01:
            started = wk.start_ms  # the week's first instant
        elif roll < 0.02:
            started = wk.end_ms - 1  # its last
        else:
            started = wk.start_ms + rng.randrange(0, week_ms)
        original(started)
    return rows


def _worker_id(i: int) -> str:
    return f"bw{i:06d}"


def _device_id(i: int) -> str:
    return f"bd{i:06d}"


def _grid_id(i: int) -> str:
    return f"bg{i // WORKERS_PER_GRID:06d}"


def unit_rows(workers: int) -> list[tuple[str, str | None, str, str, str, str, str]]:
    """The unit tree: one district, then streets of communities of grids, two workers a grid."""
    rows: list[tuple[str, str | None, str, str, str, str, str]] = []
    district = "bdist"
    rows.append((district, None, "district", "Bench district", "", f"/{district}/", TZ))
    grids = (workers + WORKERS_PER_GRID - 1) // WORKERS_PER_GRID
    for g in range(grids):
        c = g // GRIDS_PER_COMMUNITY
        s = c // COMMUNITIES_PER_STREET
        street, community, grid = f"bs{s:04d}", f"bc{c:05d}", f"bg{g:06d}"
        street_path = f"/{district}/{street}/"
        community_path = f"{street_path}{community}/"
        if c % COMMUNITIES_PER_STREET == 0 and g % GRIDS_PER_COMMUNITY == 0:
            rows.append((street, district, "street", f"Street {s}", "", street_path, TZ))
        if g % GRIDS_PER_COMMUNITY == 0:
            rows.append((community, street, "community", f"Community {c}", "", community_path, TZ))
        rows.append((grid, community, "grid", f"Grid {g}", "", f"{community_path}{grid}/", TZ))
    return rows


async def load(conn: asyncpg.Connection, opts: Options, workers: int, wk: Week) -> Counts:
    """Empty every table the evaluation reads or writes, then fill the inputs with COPY."""
    tables = ", ".join((*INPUT_TABLES, *OUTPUT_TABLES))
    await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    counts = Counts(workers=workers)
    units = unit_rows(workers)
    counts.grids = sum(1 for u in units if u[2] == "grid")
    await conn.copy_records_to_table(
        "unit", records=units, columns=["id", "parent_id", "kind", "name", "code", "path", "tz"]
    )
    # A district setting that changes nothing (3 is the default): policy resolution reads it.
    await conn.execute(
        "INSERT INTO unit_setting (unit_id, values, updated_ms, updated_by)"
        " VALUES ('bdist', $1, 0, 'bench')",
        json.dumps({"quota_patrols": DEFAULTS.quota_patrols}),
    )
    await conn.copy_records_to_table(
        "worker",
        records=[(_worker_id(i), f"Worker {i}", "", True) for i in range(workers)],
        columns=["id", "name", "phone", "active"],
    )
    await conn.copy_records_to_table(
        "worker_grid",
        records=[(_worker_id(i), _grid_id(i)) for i in range(workers)],
        columns=["worker_id", "grid_id"],
    )
    await conn.copy_records_to_table(
        "device",
        records=[
            (
                _device_id(i),
                _worker_id(i),
                "bench",
                wk.start_ms - 30 * DAY,  # enrolled well before the week
                wk.end_ms + DAY,
                0,
                None,
                wk.end_ms + DAY,  # synced past the week's end: verdicts are final
            )
            for i in range(workers)
        ],
        columns=[
            "id",
            "worker_id",
            "platform",
            "created_ms",
            "last_seen_ms",
            "last_skew_ms",
            "revoked_ms",
            "watermark_ms",
        ],
    )
    rng = random.Random(opts.seed * 1_000_003 + workers)
    for start in range(0, workers, BLOCK):
        rows: list[tuple[Any, ...]] = []
        for i in range(start, min(workers, start + BLOCK)):
            rows.extend(worker_rows(rng, i, wk, opts.checkins_per_worker, counts))
        await conn.copy_records_to_table("checkin", records=rows, columns=CHECKIN_COLUMNS)
    for table in INPUT_TABLES:
        await conn.execute(f"VACUUM ANALYZE {table}")
    return counts


async def reset_outputs(conn: asyncpg.Connection) -> None:
    await conn.execute(f"TRUNCATE {', '.join(OUTPUT_TABLES)} RESTART IDENTITY")


async def checkpoint(conn: asyncpg.Connection) -> None:
    """Flush dirty pages so a phase does not pay for the previous one (superuser only)."""
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


# ---------------------------------------------------------------- timed work


class Breakdown:
    """Wall time spent in each store call ``evaluate_weeks`` makes (wrapped while it runs)."""

    TARGETS: tuple[tuple[Any, str], ...] = (
        (alerts_store, "lock_subjects"),
        (quota_store, "worker_places"),
        (quota_store, "unit_overrides"),
        (quota_store, "week_durations"),
        (quota_store, "watermarks"),
        (quota_store, "upsert_verdicts"),
        (alerts_store, "apply"),
        (alerts_store, "add_events"),
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {name: 0.0 for _, name in self.TARGETS}
        self.cpu_s: dict[str, float] = {name: 0.0 for _, name in self.TARGETS}
        """CPU seconds of this process during each call: its Python side (nothing else runs in
        the bench meanwhile); the rest of the wall time is PostgreSQL and the round trips."""

    def _wrap(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.cpu_s[name] += time.process_time() - cpu

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        saved = [(module, name, getattr(module, name)) for module, name in self.TARGETS]
        try:
            for module, name, fn in saved:
                setattr(module, name, self._wrap(name, fn))
            yield
        finally:
            for module, name, fn in saved:
                setattr(module, name, fn)

    def split(self, run: Run, parallel: int) -> dict[str, tuple[float, float | None]]:
        """(wall s, bench CPU s) of each call, then of the ``rest`` of the evaluation (the
        rules, policy resolution, transactions); ``alerts.add_events`` runs inside
        ``alerts.apply``. With chunks in parallel the calls overlap one another: their times
        are summed over chunks (and the CPU of one includes the other chunks' meanwhile), and
        there is no ``rest``."""
        total_s, total_cpu = run.eval_s, run.cpu_eval.get("bench")
        out: dict[str, tuple[float, float | None]] = {}
        for module, name in self.TARGETS:
            out[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"] = (
                self.seconds[name],
                self.cpu_s[name],
            )
        if parallel > 1:
            return out
        top = [n for _, n in self.TARGETS if n != "add_events"]
        rest_cpu = None
        if total_cpu is not None:
            rest_cpu = max(0.0, total_cpu - sum(self.cpu_s[n] for n in top))
        out["rest"] = (total_s - sum(self.seconds[n] for n in top), rest_cpu)
        return out


async def _weeks(
    label: str, now_ms: int, conn: AsyncConnection, workers: Sequence[str]
) -> list[NewEvent]:
    return await evaluate.evaluate_weeks(conn, workers, label, now_ms)


async def evaluate_all(engine: AsyncEngine, workers: Sequence[str], now_ms: int) -> int:
    """The sweep's way: chunks of ``sweep.CHUNK`` workers, one transaction each."""
    return await sweep._chunks(engine, "week", workers, functools.partial(_weeks, LABEL, now_ms))


async def raw_counts(conn: asyncpg.Connection, wk: Week) -> dict[str, tuple[int, int]]:
    rows = await conn.fetch(RAW_SQL, wk.start_ms, wk.end_ms, DEFAULTS.quota_min_patrol_ms)
    return {r["worker_id"]: (int(r["counted"]), int(r["patrols"])) for r in rows}


async def check(
    conn: asyncpg.Connection, workers: Sequence[str], raw: dict[str, tuple[int, int]], events: int
) -> int:
    """Compare the stored verdicts and alerts with the raw counts; return the workers short."""
    verdicts = {
        r["worker_id"]: r
        for r in await conn.fetch(
            "SELECT worker_id, phase, counted, short FROM week_verdict WHERE period = $1", LABEL
        )
    }
    wrong: list[str] = []
    for w in workers:
        counted, patrols = raw.get(w, (0, 0))
        v = verdicts.get(w)
        if v is None:
            wrong.append(f"{w}: no verdict (raw {counted}/{patrols})")
        elif (v["phase"], v["counted"], v["short"]) != ("final", counted, patrols - counted):
            wrong.append(
                f"{w}: verdict {v['phase']} counted {v['counted']} short {v['short']},"
                f" raw counted {counted} short {patrols - counted}"
            )
    if len(verdicts) != len(workers):
        wrong.append(f"{len(verdicts)} verdicts for {len(workers)} workers")
    short = sum(1 for w in workers if raw.get(w, (0, 0))[0] < DEFAULTS.quota_patrols)
    missed = await conn.fetchval(
        "SELECT count(*) FROM alert WHERE rule = 'quota_missed' AND subject_kind = 'worker'"
        " AND period = $1 AND status = 'open'",
        LABEL,
    )
    if missed != short:
        wrong.append(f"{missed} open quota_missed alerts, {short} workers under quota")
    if events != short:
        wrong.append(f"{events} alert events, expected {short} (one 'opened' per worker short)")
    if wrong:
        raise BenchError(f"{len(wrong)} disagreements, e.g.: " + "; ".join(wrong[:5]))
    return short


@dataclass(slots=True)
class Run:
    eval_s: float
    raw_s: float
    cpu_eval: dict[str, float | None]
    cpu_raw: dict[str, float | None]
    breakdown: Breakdown

    @property
    def ratio(self) -> float:
        return self.raw_s / self.eval_s if self.eval_s > 0 else 0.0


@dataclass(slots=True)
class SizeResult:
    workers: int
    counts: Counts
    setup_s: float
    short: int
    runs: list[Run] = field(default_factory=list)

    def median(self, key: Callable[[Run], float]) -> float:
        return statistics.median(key(r) for r in self.runs)

    @property
    def eval_s(self) -> float:
        return self.median(lambda r: r.eval_s)

    @property
    def raw_s(self) -> float:
        return self.median(lambda r: r.raw_s)

    @property
    def ratio(self) -> float:
        return self.median(lambda r: r.ratio)

    @property
    def per_worker_ms(self) -> float:
        return self.eval_s * 1000 / self.workers

    def middle(self) -> Run:
        """The run with the median ratio."""
        return sorted(self.runs, key=lambda r: r.ratio)[len(self.runs) // 2]


async def one_size(
    opts: Options,
    admin: asyncpg.Connection,
    engine: AsyncEngine,
    probe: CpuProbe,
    workers: int,
) -> SizeResult:
    wk = week(LABEL, TZ)
    now_ms = wk.end_ms + NOW_AFTER_END_MS
    log(f"{workers:,} workers: generating and copying the data ...")
    start = time.perf_counter()
    counts = await load(admin, opts, workers, wk)
    setup_s = time.perf_counter() - start
    log(
        f"{workers:,} workers: {counts.week_rows:,} check-ins in the week, {counts.other_rows:,}"
        f" outside, {counts.amendments:,} amendments ({setup_s:.1f} s)"
    )
    ids = [_worker_id(i) for i in range(workers)]  # sorted, as the sweep orders them
    # Warm-up: connections, prepared statements, SQLAlchemy's compiled cache, the buffer cache.
    await evaluate_all(engine, ids[: sweep.CHUNK], now_ms)
    await raw_counts(admin, wk)
    await reset_outputs(admin)
    result = SizeResult(workers, counts, setup_s, 0)
    for n in range(opts.repeat):
        if n:
            await reset_outputs(admin)
        await checkpoint(admin)
        breakdown = Breakdown()
        profile = opts.profile if n == 0 and workers == opts.workers else None
        profiler = cProfile.Profile() if profile is not None else None
        before = probe.sample()
        t0 = time.perf_counter()
        with breakdown.installed(), profiler or contextlib.nullcontext():
            events = await evaluate_all(engine, ids, now_ms)
        eval_s = time.perf_counter() - t0
        after = probe.sample()
        cpu_eval = {k: minus(after[k], v) for k, v in before.items()}
        if profiler is not None and profile is not None:
            profiler.dump_stats(profile)
            log(f"profile written to {profile} (read it with python -m pstats)")
        await checkpoint(admin)
        before = probe.sample()
        t0 = time.perf_counter()
        raw = await raw_counts(admin, wk)
        raw_s = time.perf_counter() - t0
        after = probe.sample()
        cpu_raw = {k: minus(after[k], v) for k, v in before.items()}
        result.short = await check(admin, ids, raw, events)
        run = Run(eval_s, raw_s, cpu_eval, cpu_raw, breakdown)
        result.runs.append(run)
        log(
            f"{workers:,} workers: eval {eval_s:.3f} s (cpu {cpu_eval}), raw {raw_s:.3f} s"
            f" (cpu {cpu_raw}), ratio {run.ratio:.3f}, {result.short:,} under quota: checked"
        )
    return result


async def run(opts: Options, dsn: str, url: str) -> tuple[str, list[SizeResult]]:
    admin = await asyncpg.connect(dsn)
    settings = Settings(database_url=url)
    engine = make_engine(settings)
    sweep.PARALLEL = opts.parallel
    tune_gc(settings)  # as the worker process does at start
    try:
        version = str(await admin.fetchval("SHOW server_version"))
        backend = int(await admin.fetchval("SELECT pg_backend_pid()"))
        probe = CpuProbe(parent_of(backend), opts.db_name)
        results = [await one_size(opts, admin, engine, probe, n) for n in opts.sizes]
        return version, results
    finally:
        await engine.dispose()
        await admin.close()


# ---------------------------------------------------------------- report


def _cpu(cpu: dict[str, float | None]) -> str:
    return "/".join("-" if cpu.get(k) is None else f"{cpu[k]:.1f}" for k in ("bench", "postgres"))


def report(opts: Options, version: str, results: list[SizeResult]) -> dict[str, Any]:
    main = next(r for r in results if r.workers == opts.workers)
    smallest, largest = results[0], results[-1]
    scaling = largest.per_worker_ms / smallest.per_worker_ms if smallest.per_worker_ms else 0.0
    cores = os.cpu_count() or 0
    print()
    print(
        f"patrolsync quota benchmark: PostgreSQL {version}, week {LABEL} ({TZ}),"
        f" {opts.checkins_per_worker} check-ins per worker in the week, chunks of {sweep.CHUNK}"
        f" ({opts.parallel} at a time), repeat {opts.repeat}, {cores} CPU cores"
    )
    print()
    header = (
        f"{'workers':>9}{'check-ins':>11}{'outside':>9}{'eval s':>9}{'raw SQL s':>11}"
        f"{'ratio':>8}{'ms/worker':>11}{'short':>8}   CPU s eval / raw (bench/postgres)"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        mid = r.middle()
        mark = " *" if r is main else ""
        print(
            f"{r.workers:>9,}{r.counts.week_rows:>11,}{r.counts.other_rows:>9,}{r.eval_s:>9.3f}"
            f"{r.raw_s:>11.3f}{r.ratio:>8.3f}{r.per_worker_ms:>11.3f}{r.short:>8,}"
            f"   {_cpu(mid.cpu_eval)} / {_cpu(mid.cpu_raw)}{mark}"
        )
    print()
    print(
        f"scaling: ms per worker at {largest.workers:,} / at {smallest.workers:,}"
        f" = {scaling:.2f} (linear cost: about 1)"
    )
    mid = main.middle()
    splits = {r.workers: r.middle().breakdown.split(r.middle(), opts.parallel) for r in results}
    split = splits[main.workers]
    print()
    print("eval by the store calls of evaluate_weeks: wall s (of which bench CPU s), per size")
    if opts.parallel > 1:
        print(
            f"  ({opts.parallel} chunks at a time: each call's time is summed over chunks that"
            " overlap, so the column may add up to more than eval s; --parallel 1 for a serial"
            " breakdown with the rest)"
        )
    head = f"  {'call':<38}" + "".join(f"{f'{n:,} workers':>22}" for n in splits)
    print(head)
    for name in split:
        label = {
            "alerts.add_events": "  of which alerts.add_events",
            "rest": "rest: rules, policies, transactions",
        }.get(name, name)
        cells = []
        for parts in splits.values():
            wall, cpu = parts[name]
            cpu_text = "-" if cpu is None else f"{cpu:.3f}"
            cells.append(f"{f'{wall:.3f} ({cpu_text})':>22}")
        print(f"  {label:<38}" + "".join(cells))
    print()
    verdict = "met" if main.ratio >= TARGET_RATIO else "NOT met"
    print(
        f"ratio = raw_sql_s / eval_s = {main.raw_s:.3f} / {main.eval_s:.3f} = {main.ratio:.3f}"
        f"   target >= {TARGET_RATIO}: {verdict}"
    )
    return {
        "eval_s": round(main.eval_s, 3),
        "raw_sql_s": round(main.raw_s, 3),
        "ratio": round(main.ratio, 3),
        "per_worker_ms": {str(r.workers): round(r.per_worker_ms, 4) for r in results},
        "scaling": round(scaling, 3),
        "workers": main.workers,
        "checkins": main.counts.week_rows,
        "checkins_outside": main.counts.other_rows,
        "amendments": main.counts.amendments,
        "under_quota": main.short,
        "quick": opts.quick,
        "target_met": main.ratio >= TARGET_RATIO,
        "breakdown_s": {k: round(v[0], 3) for k, v in split.items()},
        "breakdown_cpu_s": {k: None if v[1] is None else round(v[1], 3) for k, v in split.items()},
        "cpu_s": {"eval": mid.cpu_eval, "raw": mid.cpu_raw},
        "sizes": [
            {
                "workers": r.workers,
                "checkins": r.counts.week_rows,
                "checkins_outside": r.counts.other_rows,
                "eval_s": round(r.eval_s, 3),
                "raw_sql_s": round(r.raw_s, 3),
                "ratio": round(r.ratio, 3),
                "setup_s": round(r.setup_s, 1),
                "breakdown_s": {k: round(v[0], 3) for k, v in splits[r.workers].items()},
                "runs": [
                    {"eval_s": round(x.eval_s, 3), "raw_sql_s": round(x.raw_s, 3)} for x in r.runs
                ],
            }
            for r in results
        ],
        "label": LABEL,
        "checkins_per_worker": opts.checkins_per_worker,
        "chunk": sweep.CHUNK,
        "parallel": opts.parallel,
        "repeat": opts.repeat,
        "cpu_cores": cores,
        "postgres": version,
    }


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.perf_counter()
    dsn, url = database_urls(opts.pg_admin, opts.db_name)
    log(f"recreating database {opts.db_name} ...")
    try:
        asyncio.run(recreate_database(opts.pg_admin, opts.db_name))
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"cannot create database {opts.db_name} via {opts.pg_admin}: {exc}")
        return 2
    try:
        upgrade(Settings(database_url=url))
        log(f"migrated; sizes {', '.join(f'{n:,}' for n in opts.sizes)} workers")
        version, results = asyncio.run(run(opts, dsn, url))
    except BenchError as exc:
        log(f"bench failed: {exc}")
        return 1
    finally:
        if not opts.keep:
            try:
                asyncio.run(drop_database(opts.pg_admin, opts.db_name))
            except (OSError, asyncpg.PostgresError) as exc:
                log(f"could not drop database {opts.db_name}: {exc}")
    result = report(opts, version, results)
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    line = json.dumps(result, separators=(",", ":"))
    if opts.json_out is not None:
        opts.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
