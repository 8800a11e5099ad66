"""What every long-running process of the product (server, worker) sets at start."""

from __future__ import annotations

import gc

from server.settings import Settings


def tune_gc(settings: Settings) -> None:
    """Keep the objects alive after start-up (modules, routes, table metadata) out of the
    garbage collector's scans, and collect the youngest generation every
    ``settings.gc_threshold`` allocations instead of Python's 700: a request's or a job's
    objects die by reference counting, and frequent collections cost a fifth of the CPU."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(settings.gc_threshold, *gc.get_threshold()[1:])
