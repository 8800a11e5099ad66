"""The quota worker's bulk reads and writes on PostgreSQL's driver connection: ten thousand
rows through SQLAlchemy's result processing cost more than the queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.pg.driver import encode_rows, pg_driver, pg_json_rows
from server.store.tables import verdict_t

_PLACES = """
SELECT w.id, w.since_ms, u.id, u.path, u.tz
FROM worker AS w
CROSS JOIN LATERAL (SELECT min(g.grid_id) AS grid_id FROM worker_grid AS g
                    WHERE g.worker_id = w.id) AS first
JOIN unit AS u ON u.id = first.grid_id
WHERE w.active
"""

_WEEK_DURATIONS = """
WITH latest AS (
    SELECT root_id, max(clock) AS clock FROM checkin
    WHERE worker_id = ANY($1::text[]) AND clock IS NOT NULL
    GROUP BY root_id
)
SELECT c.worker_id, array_agg(c.duration_ms)
FROM checkin AS c LEFT JOIN latest ON latest.root_id = c.root_id
WHERE c.worker_id = ANY($1::text[]) AND c.started_ms >= $2 AND c.started_ms < $3
  AND (latest.root_id IS NULL OR c.clock = latest.clock)
GROUP BY c.worker_id
"""
"""``effective.latest`` as one hash join of the workers' latest amendment per chain (from
``ix_checkin_amended`` alone), one array parameter instead of one bind per worker, one row per
worker instead of one per patrol. Planned for its actual parameters (``_CUSTOM_PLANS``): a plan
made for "some array of workers" expects a handful of amendments and loops over them once per
patrol, fifty times slower."""

_CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"

_WATERMARKS = """
SELECT worker_id, array_agg(coalesce(watermark_ms, 0))
FROM device
WHERE worker_id = ANY($1::text[]) AND revoked_ms IS NULL AND created_ms < $2
GROUP BY worker_id
"""

_VISITS = """
SELECT h.id, h.care_tier, h.since_ms, u.id, u.path, u.tz, v.latest, v.follow_up
FROM household AS h
JOIN unit AS u ON u.id = h.grid_id
LEFT JOIN (
    SELECT household_id,
           max(visit) FILTER (WHERE visit BETWEEN 0 AND $1) AS latest,
           bool_or(follow_up) AS follow_up
    FROM (
        SELECT household_id,
               CASE WHEN jsonb_typeof(fields) = 'object'
                     AND (NOT fields ? 'outcome'
                          OR fields -> 'outcome' IN ('"met"'::jsonb, '"refused"'::jsonb))
                    THEN CASE WHEN NOT fields ? 'visited_ms' THEN created_ms
                              WHEN jsonb_typeof(fields -> 'visited_ms') = 'number'
                               AND fields ->> 'visited_ms' ~ '^[0-9]{1,18}$'
                              THEN (fields ->> 'visited_ms')::bigint
                         END
               END AS visit,
               (jsonb_typeof(fields) <> 'object' OR fields ? 'follow_up') AS follow_up
        FROM note
        WHERE seq > 0 AND NOT deleted
    ) AS n
    GROUP BY household_id
) AS v ON v.household_id = h.id
"""
"""``store.quota.visit_summaries``: one row per household, its notes summed up in the
database (a visit whose fields are odd is left out: the summary only ever errs early)."""

VERDICT_KEY = ("worker_id", "period")
_UPSERT_VERDICTS = (
    f"INSERT INTO week_verdict ({', '.join(c.name for c in verdict_t.columns)})"
    f" {pg_json_rows(verdict_t)} ORDER BY worker_id, period"
    " ON CONFLICT (worker_id, period) DO UPDATE SET "
    + ", ".join(
        f"{c.name} = excluded.{c.name}" for c in verdict_t.columns if c.name not in VERDICT_KEY
    )
)


async def worker_places(
    conn: AsyncConnection, worker_ids: Iterable[str] | None
) -> Sequence[Sequence[Any]]:
    driver = await pg_driver(conn)
    if worker_ids is None:
        rows: Sequence[Sequence[Any]] = await driver.fetch(_PLACES)
    else:
        rows = await driver.fetch(_PLACES + " AND w.id = ANY($1::text[])", list(worker_ids))
    return rows


async def week_durations(
    conn: AsyncConnection, worker_ids: Sequence[str], start_ms: int, end_ms: int
) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    driver = await pg_driver(conn)
    if driver.is_in_transaction():  # (SET LOCAL means nothing outside one)
        await driver.execute(_CUSTOM_PLANS)
    for worker_id, durations in await driver.fetch(
        _WEEK_DURATIONS, list(worker_ids), start_ms, end_ms
    ):
        found[worker_id].extend(durations)
    return found


async def watermarks(
    conn: AsyncConnection, worker_ids: Sequence[str], week_end_ms: int
) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {w: [] for w in worker_ids}
    driver = await pg_driver(conn)
    for worker_id, marks in await driver.fetch(_WATERMARKS, list(worker_ids), week_end_ms):
        found[worker_id].extend(marks)
    return found


async def visit_summaries(conn: AsyncConnection, now_ms: int) -> Sequence[Sequence[Any]]:
    driver = await pg_driver(conn)
    rows: Sequence[Sequence[Any]] = await driver.fetch(_VISITS, now_ms)
    return rows


async def upsert_verdicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await conn.exec_driver_sql(_UPSERT_VERDICTS, (encode_rows(list(rows)),))
