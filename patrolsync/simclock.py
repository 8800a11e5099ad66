"""A simulated clock for the demo: compressed time that still runs.

``now()`` is the wall clock plus an offset, so time passes at its own pace between jumps (rate
limits, backoffs and HLCs see an ordinary clock) while :meth:`SimClock.jump_to` skips days.
Invariant: ``now()`` never goes backwards — a jump to an earlier moment is refused.

The offset lives in shared memory (:attr:`SimClock.cell`): a clock made in another process
from the same cell (:meth:`SimClock.following`) reads the same simulated time, so the demo's
server process sees every jump the demo makes.
"""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing.sharedctypes import RawValue
from typing import Any

from server.clock import wall_ms


class SimClock:
    def __init__(self, start_ms: int, wall: Callable[[], int] = wall_ms) -> None:
        self._wall = wall
        self.cell: Any = RawValue("q", start_ms - wall())
        """The offset from the wall clock (ms), in memory a child process can share."""

    @classmethod
    def following(cls, cell: Any, wall: Callable[[], int] = wall_ms) -> SimClock:
        """A clock reading the offset ``cell`` of another process's clock (it never jumps
        by itself: the owner's :meth:`jump_to` moves both)."""
        clock = cls.__new__(cls)
        clock._wall = wall
        clock.cell = cell
        return clock

    def now(self) -> int:
        return self._wall() + int(self.cell.value)

    def jump_to(self, at_ms: int) -> None:
        """Move the clock on to ``at_ms`` (it runs on from there)."""
        current = self.now()
        if at_ms < current:
            raise ValueError(f"the simulated clock cannot go back ({at_ms} < {current})")
        self.cell.value += at_ms - current
