"""A simulated clock for the demo: compressed time that still runs.

``now()`` is the wall clock plus an offset, so time passes at its own pace between jumps (rate
limits, backoffs and HLCs see an ordinary clock) while :meth:`SimClock.jump_to` skips days.
Invariant: ``now()`` never goes backwards — a jump to an earlier moment is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from server.clock import wall_ms


class SimClock:
    def __init__(self, start_ms: int, wall: Callable[[], int] = wall_ms) -> None:
        self._wall = wall
        self._offset = start_ms - wall()

    def now(self) -> int:
        return self._wall() + self._offset

    def jump_to(self, at_ms: int) -> None:
        """Move the clock on to ``at_ms`` (it runs on from there)."""
        current = self.now()
        if at_ms < current:
            raise ValueError(f"the simulated clock cannot go back ({at_ms} < {current})")
        self._offset += at_ms - current
