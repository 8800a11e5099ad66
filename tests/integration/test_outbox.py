"""The outbox on both backends: one row per key, versions, relay marks, deletion at the version
the job was queued for, and a lost job relayed again."""

from __future__ import annotations

from server.db import make_engine
from server.settings import Settings
from server.store import outbox
from server.tx import read, transaction
from tests.conftest import reset

KEY = ("week", "w-zhang", "2026-W47")


async def test_requests_versions_relay_and_done(settings: Settings) -> None:
    await reset(settings)
    engine = make_engine(settings)
    try:
        await transaction(engine, lambda c: outbox.request(c, [KEY, KEY], 1_000))
        (first,) = await read(engine, lambda c: outbox.due(c, 1_000, 60_000, 10))
        assert (first.kind, first.subject, first.period, first.version) == (*KEY, 1)
        await transaction(engine, lambda c: outbox.relayed(c, [first], 1_000))
        assert await read(engine, lambda c: outbox.due(c, 2_000, 60_000, 10)) == []
        # New data while the job is queued: the row's version moves on, so it is due again.
        await transaction(engine, lambda c: outbox.request(c, [KEY], 3_000))
        (second,) = await read(engine, lambda c: outbox.due(c, 3_000, 60_000, 10))
        assert (second.id, second.version) == (first.id, 2)
        # The first job finishes: it must not delete the newer request.
        assert not await transaction(engine, lambda c: outbox.done(c, first.id, first.version))
        assert await read(engine, outbox.backlog) == (1, 3_000)
        # The second job is lost (never runs): after the retry delay it is due once more.
        await transaction(engine, lambda c: outbox.relayed(c, [second], 3_000))
        assert await read(engine, lambda c: outbox.due(c, 62_000, 60_000, 10)) == []
        (again,) = await read(engine, lambda c: outbox.due(c, 63_001, 60_000, 10))
        assert again == second
        assert await transaction(engine, lambda c: outbox.done(c, second.id, second.version))
        assert await read(engine, outbox.backlog) == (0, None)
        # Ids are never reused: a new request for the same key is a new job.
        await transaction(engine, lambda c: outbox.request(c, [KEY], 70_000))
        (third,) = await read(engine, lambda c: outbox.due(c, 70_000, 60_000, 10))
        assert third.id > second.id
    finally:
        await engine.dispose()


async def test_done_all_deletes_each_request_only_at_its_version(settings: Settings) -> None:
    await reset(settings)
    engine = make_engine(settings)
    other = ("household", "h-1", "")
    try:
        await transaction(engine, lambda c: outbox.request(c, [KEY, other], 1_000))
        queued = await read(engine, lambda c: outbox.due(c, 1_000, 60_000, 10))
        assert len(queued) == 2
        # A new request for KEY arrives while the job runs: its row must stay.
        await transaction(engine, lambda c: outbox.request(c, [KEY], 2_000))
        await transaction(engine, lambda c: outbox.done_all(c, [(r.id, r.version) for r in queued]))
        (left,) = await read(engine, lambda c: outbox.due(c, 2_000, 60_000, 10))
        assert (left.kind, left.subject, left.period, left.version) == (*KEY, 2)
        await transaction(engine, lambda c: outbox.done_all(c, []))
        assert await read(engine, outbox.backlog) == (1, 2_000)
    finally:
        await engine.dispose()
