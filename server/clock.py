"""The one wall clock of the server and the worker processes (milliseconds since the epoch).

Everything else takes time as an argument; tests and the demo pass their own clock instead.
"""

from __future__ import annotations

import time


def wall_ms() -> int:
    return time.time_ns() // 1_000_000
