"""The golden exchanges (docs/vectors/exchanges-*.json): their cases and where they run.

Each case starts on a fresh server with the sample district; the supervisor s-xinhua's token is
bound as ``<token:s-xinhua>`` (the operator makes it with ``patrolsync supervisor-token
s-xinhua``). Ids and times are fixed so the recording is stable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from server.settings import Settings
from server.store import counter
from server.store import push as push_store
from server.tx import transaction
from tests.exchange_cases_pull import PULL
from tests.exchange_cases_push import PUSH
from tests.exchange_cases_worked import WORKED
from tests.exchanges import Server
from tests.support import Clock

CASES: dict[str, dict[str, Any]] = {
    "exchanges-worked-example.json": WORKED,
    "exchanges-push.json": PUSH,
    "exchanges-pull.json": PULL,
}


@asynccontextmanager
async def in_process(settings: Settings, *, running_clock: bool) -> AsyncIterator[Server]:
    """The app on a fresh database (tests.conftest.running) with s-xinhua's token bound; with
    ``running_clock`` False the server's clock is set by each step (recording)."""
    from tests.conftest import running

    async with running(settings) as fleet:
        token = (await fleet.supervisor("s-xinhua"))["Authorization"].split()[1]

        def set_clock(ms: int) -> None:
            fleet.services.clock = Clock(ms)

        async def operator(command: str) -> None:
            assert command == "patrolsync prune --keep-days 0", command
            # What the command does, a moment after the step's time (it forgets tombstones
            # changed before its own clock).
            before = fleet.services.clock() + 1

            async def work(conn: Any) -> None:
                _, top = await push_store.prune_tombstones(conn, before)
                await counter.raise_horizon(conn, top)

            await transaction(fleet.services.engine, work)

        yield Server(
            fleet.client,
            None if running_clock else set_clock,
            operator,
            {"token:s-xinhua": token},
        )
