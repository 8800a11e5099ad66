"""Hybrid logical clock (Kulkarni et al., 2014).

An :class:`HLC` is ``(wall_ms, counter, node)``. Invariants:

* ``0 <= wall_ms < 10**15``, ``0 <= counter < 10**5``;
* ``node`` is the device id: 1 to 64 printable ASCII characters without whitespace
  (``0x21``-``0x7e``; ``-`` allowed). ASCII only, so that every language compares encoded
  clocks the same way (byte order == UTF-16 order == code point order);
* ``encode()`` is fixed width (``{wall_ms:015d}-{counter:05d}-{node}``), so comparing two
  encoded clocks as strings gives the same order as comparing the ``HLC`` tuples;
* :func:`tick` and :func:`receive` never go backwards: the result's ``(wall_ms, counter)`` is
  strictly greater than the local clock's and (for :func:`receive`) the remote clock's, whatever
  ``now_ms`` says, and ``wall_ms`` is the maximum of ``now_ms`` and every wall time seen.

The node only breaks ties between equal ``(wall_ms, counter)`` pairs of different devices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WALL_LIMIT = 10**15
"""Exclusive upper bound of ``wall_ms`` (15 decimal digits)."""
COUNTER_LIMIT = 10**5
"""Exclusive upper bound of ``counter`` (5 decimal digits)."""
NODE_MAX_LEN = 64
"""Longest node id (a device id): printable ASCII without spaces."""

_NODE = rf"[\x21-\x7e]{{1,{NODE_MAX_LEN}}}"
_NODE_RE = re.compile(_NODE)
_CLOCK_RE = re.compile(rf"([0-9]{{15}})-([0-9]{{5}})-({_NODE})")


class HLCError(ValueError):
    """A malformed clock, an out-of-range time, or a counter overflow."""


def _check_int(name: str, value: object, limit: int) -> int:
    if type(value) is not int:
        raise HLCError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < limit:
        raise HLCError(f"{name} out of range [0, {limit}): {value}")
    return value


def check_node(node: object) -> str:
    """Return ``node`` if it is a valid device id for a clock, else raise :class:`HLCError`."""
    if not isinstance(node, str) or _NODE_RE.fullmatch(node) is None:
        raise HLCError(f"invalid node (1-64 printable ASCII chars, no whitespace): {node!r}")
    return node


@dataclass(frozen=True, order=True, slots=True)
class HLC:
    """One hybrid logical clock reading. Validated on construction; ordered as a tuple."""

    wall_ms: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        _check_int("wall_ms", self.wall_ms, WALL_LIMIT)
        _check_int("counter", self.counter, COUNTER_LIMIT)
        check_node(self.node)

    def encode(self) -> str:
        """Fixed-width text form; string order equals tuple order."""
        return f"{self.wall_ms:015d}-{self.counter:05d}-{self.node}"

    @classmethod
    def parse(cls, s: str) -> HLC:
        """Strict inverse of :meth:`encode`; raises :class:`HLCError` on anything else."""
        if not isinstance(s, str):
            raise HLCError(f"clock must be a str, got {type(s).__name__}")
        m = _CLOCK_RE.fullmatch(s)
        if m is None:
            raise HLCError(f"malformed clock: {s[:100]!r}")
        return cls(int(m.group(1)), int(m.group(2)), m.group(3))

    def __str__(self) -> str:
        return self.encode()


def _make(wall_ms: int, counter: int, node: str) -> HLC:
    if counter >= COUNTER_LIMIT:
        raise HLCError(f"counter overflow at wall_ms={wall_ms}")
    return HLC(wall_ms, counter, node)


def tick(local: HLC | None, now_ms: int, node: str) -> HLC:
    """Clock for a local event (an edit, a send).

    Result ``> local`` in ``(wall_ms, counter)``; ``wall_ms == max(now_ms, local.wall_ms)``.
    Raises :class:`HLCError` if ``now_ms`` is out of range or the counter overflows.
    """
    _check_int("now_ms", now_ms, WALL_LIMIT)
    check_node(node)
    if local is None or now_ms > local.wall_ms:
        return _make(now_ms, 0, node)
    return _make(local.wall_ms, local.counter + 1, node)


def receive(
    local: HLC | None,
    remote: HLC,
    now_ms: int,
    node: str,
    *,
    max_ahead_ms: int | None = None,
) -> HLC:
    """Clock after receiving ``remote`` (a clock seen in a pulled or pushed message).

    Result ``> local`` and ``> remote`` in ``(wall_ms, counter)``;
    ``wall_ms == max(now_ms, local.wall_ms, remote.wall_ms)``.
    If ``max_ahead_ms`` is given, a remote clock whose ``wall_ms`` is more than that ahead of
    ``now_ms`` is refused with :class:`HLCError` (a device with a clock set years ahead would
    otherwise drag every clock it touches into the future, forever).
    """
    _check_int("now_ms", now_ms, WALL_LIMIT)
    check_node(node)
    if max_ahead_ms is not None and remote.wall_ms - now_ms > max_ahead_ms:
        raise HLCError(f"remote clock {remote.encode()} is more than {max_ahead_ms} ms ahead")
    if local is None:
        if now_ms > remote.wall_ms:
            return _make(now_ms, 0, node)
        return _make(remote.wall_ms, remote.counter + 1, node)
    wall = max(now_ms, local.wall_ms, remote.wall_ms)
    if wall == local.wall_ms == remote.wall_ms:
        counter = max(local.counter, remote.counter) + 1
    elif wall == local.wall_ms:
        counter = local.counter + 1
    elif wall == remote.wall_ms:
        counter = remote.counter + 1
    else:
        counter = 0
    return _make(wall, counter, node)
