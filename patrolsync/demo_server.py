"""The demo's servers and quota worker, in processes of their own beside the demo's fleet.

The demo's phones, the server and the worker all burn CPU; in one process they take turns on
one core. Here :data:`SERVERS` server processes (uvicorn, as ``patrolsync serve`` runs it) share
one listening port, which the kernel shares out by connection, and the worker runs in one more;
all on the demo's simulated clock (its offset shared, ``SimClock.following``); the phones play
in the demo's own process. On SQLite the processes' writers wait for the database's one write
lock, which each holds only for its statements (``server.lite_driver``); their reads run side by
side. On a 2-core machine, Jintai's four weeks on SQLite: one process serving and working
204 s, two serving and one working 178 s, three serving (and the worker in the first) slower
than two.

Invariant: the children stop with the demo. :meth:`ServerProcess.stop` asks them to stop (the
servers close gracefully, the worker's jobs are cancelled and stay queued, the engines are
disposed) and kills one only if it does not stop in time; a child also stops by itself when the
demo's process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.synchronize import Event
from typing import Any

from patrolsync.simclock import SimClock
from server.serving import GRACEFUL_SHUTDOWN_S, PROTOCOL
from server.settings import Settings

SERVERS = 2
"""Server processes (the worker runs in one more)."""
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = GRACEFUL_SHUTDOWN_S + 10


class ServerProcess:
    """Child processes: ``servers`` serving ``settings`` on ``port`` (one listening port the
    kernel shares out) and one running the worker."""

    def __init__(
        self, settings: Settings, port: int, clock: SimClock, servers: int = SERVERS
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a running event loop
        self._stop = context.Event()
        roles = ["serve"] * servers + ["work"]
        self._ready = [context.Event() for _ in roles]
        self._processes = [
            context.Process(
                target=_main,
                args=(settings, port, clock.cell, ready, self._stop, os.getpid(), role),
                name=f"patrolsync-demo-{role}-{n}",
                daemon=True,
            )
            for n, (ready, role) in enumerate(zip(self._ready, roles, strict=True))
        ]

    async def start(self) -> None:
        """Start the children; return once they serve. Raises ``RuntimeError`` if one cannot."""
        for process in self._processes:
            process.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(ready.is_set() for ready in self._ready):
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError("the server process did not start")
            await asyncio.sleep(0.05)

    def alive(self) -> bool:
        return all(process.is_alive() for process in self._processes)

    async def stop(self) -> None:
        started = [p for p in self._processes if p.pid is not None]
        if not started:
            return
        self._stop.set()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        # (a child's end is no asyncio event: it is polled)
        while any(p.is_alive() for p in started) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for process in started:
            if process.is_alive():
                process.kill()
            process.join()


def _main(
    settings: Settings, port: int, cell: Any, ready: Event, stop: Event, parent: int, role: str
) -> None:
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
        runner.run(_serve(settings, port, SimClock.following(cell), ready, stop, parent, role))


def _listening(port: int) -> socket.socket:
    """A socket on ``port`` that the other server processes of the demo bind too."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


async def _serve(
    settings: Settings,
    port: int,
    clock: SimClock,
    ready: Event,
    stop: Event,
    parent: int,
    role: str,
) -> None:
    import uvicorn

    from server.app import create_app
    from worker import main as worker_main

    for noisy in ("httpx", "arq"):  # the demo's summary is the output; their lines are not
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    working: asyncio.Task[None] | None = None
    try:
        if role == "serve":
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
            serving = asyncio.create_task(server.serve(sockets=[_listening(port)]))
            while not server.started:
                if serving.done():
                    return  # could not bind: the parent sees the process end
                await asyncio.sleep(0.05)
        else:
            working = asyncio.create_task(
                worker_main.run(settings, clock=clock.now, periodic=False)
            )
        ready.set()
        # (a stop from the other process is no asyncio event: it is polled)
        while not stop.is_set() and os.getppid() == parent:
            if serving is not None and serving.done():
                break
            await asyncio.sleep(0.1)
    finally:
        if server is not None:
            server.should_exit = True  # graceful: the app's lifespan closes its engine
        if working is not None:
            working.cancel()
        for task in (working, serving):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
