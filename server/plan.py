"""What a push decides before it writes: the context, the plan, and item rejections."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from schemas.sync import ItemResult
from server.errors import ItemCode
from sync import checkin as clock_rules
from sync.hlc import HLC, HLCError


@dataclass(frozen=True, slots=True)
class Rejected:
    """An item that failed to decode, or holds what the protocol refuses: answered, never
    applied. ``id`` is the record's id when the item decoded."""

    code: ItemCode
    reason: str
    id: uuid.UUID | None = None


@dataclass(slots=True)
class Written:
    """What a push's transaction wrote that a pull reads: its ``txid`` (0: no change) and the
    scope keys of its changes (``server.waiting``). Filled by the push, read after commit."""

    txid: int = 0
    keys: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Attempts:
    """What one attempt at a push's transaction leaves the next (``tx.transaction`` runs it again
    after a :class:`~server.db.Raced` write)."""

    raced: bool = False
    """An insert met a check-in stored already: the next attempt looks every id up first."""


@dataclass(frozen=True, slots=True)
class PushContext:
    """Who pushes, from where, and the server's view of the device clock at this push."""

    worker_id: str
    device_id: str
    grids: frozenset[str]
    push_id: uuid.UUID
    skew_ms: int
    now_ms: int
    hlc_max_ahead_ms: int
    tz: str = "UTC"
    """The worker's time zone (of their first grid): their weeks are counted in it."""
    complete: bool = True
    """The device's outbox is empty after this push: its watermark moves to ``now_ms``."""
    policy: clock_rules.ClockPolicy = field(default_factory=clock_rules.ClockPolicy)
    request_id: str | None = None
    """The HTTP request of this push (``X-Request-ID``): the outbox requests it writes carry it."""
    written: Written = field(default_factory=Written, compare=False)
    """Filled by the push (the last attempt's, if its transaction was retried)."""
    attempts: Attempts = field(default_factory=Attempts, compare=False)


class ItemError(Exception):
    """One item cannot be applied: answered ``rejected`` with this code."""

    def __init__(self, code: ItemCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Plan:
    """What the items decided, filled in item order; written once every item is decided."""

    results: list[ItemResult] = field(default_factory=list)
    checkins: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    notes: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    edits: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    amended_starts: list[int] = field(default_factory=list)
    """Start times of the check-ins amended: an amendment can move a patrol to another week,
    and the week it left is evaluated again too."""
    households: set[str] = field(default_factory=set)
    """Households whose notes changed: their visit cadence is evaluated again."""
    unlooked: bool = False
    """The check-ins' ids were not looked up (a large batch: ``store.push.refuses_stored``): the
    insert must refuse any id stored already, and the push is then run again with the lookup."""


def check_clock(ctx: PushContext, clock: str) -> HLC:
    """An item's hybrid logical clock: well formed, this device's, not absurdly far ahead."""
    try:
        hlc = HLC.parse(clock)
    except HLCError as exc:
        raise ItemError(ItemCode.INVALID_CLOCK, str(exc)) from None
    if hlc.node != ctx.device_id:
        raise ItemError(ItemCode.INVALID_CLOCK, "the clock's node must be this device's id")
    if hlc.wall_ms > ctx.now_ms + ctx.hlc_max_ahead_ms:
        raise ItemError(
            ItemCode.CLOCK_AHEAD,
            f"clock is more than {ctx.hlc_max_ahead_ms} ms ahead of the server",
        )
    return hlc


def rejected(index: int, rid: uuid.UUID | None, code: ItemCode, reason: str) -> ItemResult:
    return ItemResult(index=index, status="rejected", id=rid, code=code, reason=reason)
