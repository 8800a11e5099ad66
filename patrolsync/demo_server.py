"""The demo's server and quota worker, in a process of their own beside the demo's fleet.

The demo's phones, the server and the worker all burn CPU; in one process they take turns on
one core. Here the server (uvicorn, as ``patrolsync serve`` runs it) and the worker run in one
child process, on the demo's simulated clock (its offset shared, ``SimClock.following``), and
the phones in the demo's own process: a 2-core machine runs both.

The server and the worker share the child on purpose: on SQLite they are the only writers while
the phones play, and writers of one process take turns in order (``server.tx``) instead of
polling for the database's lock against each other.

Invariant: the child stops with the demo. :meth:`ServerProcess.stop` asks it to stop (the
server closes gracefully, the worker's jobs are cancelled and stay queued, the engines are
disposed) and kills it only if it does not stop in time; the child also stops by itself when
the demo's process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.synchronize import Event
from typing import Any

from patrolsync.simclock import SimClock
from server.serving import GRACEFUL_SHUTDOWN_S, PROTOCOL
from server.settings import Settings

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = GRACEFUL_SHUTDOWN_S + 10


class ServerProcess:
    """A child process serving ``settings`` on ``port`` and running the worker."""

    def __init__(self, settings: Settings, port: int, clock: SimClock) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a running event loop
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=_main,
            args=(settings, port, clock.cell, self._ready, self._stop, os.getpid()),
            name="patrolsync-demo-server",
            daemon=True,
        )

    async def start(self) -> None:
        """Start the child; return once it serves. Raises ``RuntimeError`` if it cannot."""
        self._process.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready.is_set():
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server process did not start")
            await asyncio.sleep(0.05)

    def alive(self) -> bool:
        return self._process.is_alive()

    async def stop(self) -> None:
        if self._process.pid is None:
            return
        self._stop.set()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        # (the child's end is no asyncio event: it is polled)
        while self._process.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


def _main(settings: Settings, port: int, cell: Any, ready: Event, stop: Event, parent: int) -> None:
    # A stop comes through ``stop`` or SIGTERM (or the parent's end). Ctrl-C in the terminal
    # reaches the whole process group: uvicorn stops the server on it, and so the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # uvicorn[standard] brings it where it builds
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve(settings, port, SimClock.following(cell), ready, stop, parent))


async def _serve(
    settings: Settings, port: int, clock: SimClock, ready: Event, stop: Event, parent: int
) -> None:
    import uvicorn

    from server.app import create_app
    from worker import main as worker_main

    for noisy in ("httpx", "arq"):  # the demo's summary is the output; their lines are not
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, clock=clock.now),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            log_config=None,  # its lines go through our pipeline (server.logs)
            http=PROTOCOL,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )
    serving = asyncio.create_task(server.serve())
    working: asyncio.Task[None] | None = None
    try:
        while not server.started:
            if serving.done():
                return  # could not bind: the parent sees the process end
            await asyncio.sleep(0.05)
        working = asyncio.create_task(worker_main.run(settings, clock=clock.now, periodic=False))
        ready.set()
        # (a stop from the other process is no asyncio event: it is polled)
        while not stop.is_set() and os.getppid() == parent and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    finally:
        server.should_exit = True  # graceful: the app's lifespan closes its engine
        if working is not None:
            working.cancel()
        for task in (working, serving):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
