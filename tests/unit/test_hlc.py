"""Hybrid logical clock: monotonicity, encoding, strict parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.hlc import COUNTER_LIMIT, HLC, WALL_LIMIT, HLCError, receive, tick

nodes = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
)
walls = st.integers(0, WALL_LIMIT - 1)
clocks = st.builds(HLC, walls, st.integers(0, COUNTER_LIMIT - 1), nodes)
FAST = settings(max_examples=200, deadline=None)


def test_encode_is_fixed_width() -> None:
    assert HLC(1_700_000_000_000, 3, "dev-a1").encode() == "001700000000000-00003-dev-a1"


def test_parse_keeps_dashes_in_node() -> None:
    assert HLC.parse("001700000000000-00003-dev-a1-x") == HLC(1_700_000_000_000, 3, "dev-a1-x")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1700000000000-00003-dev",  # wall not 15 digits
        "001700000000000-3-dev",  # counter not 5 digits
        "001700000000000-00003-",  # empty node
        "001700000000000-00003",  # no node
        "001700000000000_00003_dev",
        "001700000000000-00003-dev a",  # whitespace in node
        "001700000000000-00003-dev\n",
        " 001700000000000-00003-dev",
        "+01700000000000-00003-dev",
        "00170000000000\u0661-00003-dev",  # non-ASCII digit
        "001700000000000-00003-设备",  # non-ASCII node
        "001700000000000-00003-" + "x" * 65,
        "001700000000000--0003-dev",
    ],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(HLCError):
        HLC.parse(bad)


def test_parse_rejects_non_str() -> None:
    with pytest.raises(HLCError):
        HLC.parse(b"001700000000000-00003-dev")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wall", "counter", "node"),
    [
        (-1, 0, "a"),
        (WALL_LIMIT, 0, "a"),
        (0, -1, "a"),
        (0, COUNTER_LIMIT, "a"),
        (0, 0, ""),
        (0, 0, "a b"),
        (True, 0, "a"),
        (0, 0, "x" * 65),
    ],
)
def test_constructor_validates(wall: int, counter: int, node: str) -> None:
    with pytest.raises(HLCError):
        HLC(wall, counter, node)


def test_tick_rules() -> None:
    assert tick(None, 1000, "a") == HLC(1000, 0, "a")
    assert tick(HLC(1000, 4, "b"), 2000, "a") == HLC(2000, 0, "a")
    # the wall clock went backwards: keep the old wall, bump the counter
    assert tick(HLC(1000, 4, "b"), 500, "a") == HLC(1000, 5, "a")
    assert tick(HLC(1000, 4, "b"), 1000, "a") == HLC(1000, 5, "a")


def test_receive_rules() -> None:
    assert receive(None, HLC(1000, 7, "b"), 900, "a") == HLC(1000, 8, "a")
    assert receive(None, HLC(1000, 7, "b"), 1100, "a") == HLC(1100, 0, "a")
    assert receive(HLC(1000, 2, "a"), HLC(1000, 7, "b"), 900, "a") == HLC(1000, 8, "a")
    assert receive(HLC(1000, 9, "a"), HLC(1000, 7, "b"), 900, "a") == HLC(1000, 10, "a")
    assert receive(HLC(2000, 1, "a"), HLC(1000, 7, "b"), 900, "a") == HLC(2000, 2, "a")
    assert receive(HLC(500, 1, "a"), HLC(1000, 7, "b"), 900, "a") == HLC(1000, 8, "a")
    assert receive(HLC(500, 1, "a"), HLC(1000, 7, "b"), 3000, "a") == HLC(3000, 0, "a")


def test_counter_overflow_raises() -> None:
    top = HLC(1000, COUNTER_LIMIT - 1, "a")
    with pytest.raises(HLCError, match="overflow"):
        tick(top, 1000, "a")
    with pytest.raises(HLCError, match="overflow"):
        receive(HLC(1000, 0, "a"), top, 999, "a")
    assert tick(top, 1001, "a") == HLC(1001, 0, "a")


@pytest.mark.parametrize("now", [-1, WALL_LIMIT])
def test_now_out_of_range(now: int) -> None:
    with pytest.raises(HLCError):
        tick(None, now, "a")
    with pytest.raises(HLCError):
        receive(None, HLC(1, 0, "b"), now, "a")


def test_receive_refuses_remote_far_ahead() -> None:
    remote = HLC(10_000, 0, "b")
    with pytest.raises(HLCError, match="ahead"):
        receive(None, remote, 1_000, "a", max_ahead_ms=5_000)
    assert receive(None, remote, 5_000, "a", max_ahead_ms=5_000) == HLC(10_000, 1, "a")


@FAST
@given(clocks)
def test_encode_parse_round_trip(c: HLC) -> None:
    assert HLC.parse(c.encode()) == c
    assert len(c.encode()) == 22 + len(c.node)


@FAST
@given(clocks, clocks)
def test_string_order_is_tuple_order(a: HLC, b: HLC) -> None:
    assert (a.encode() < b.encode()) == (a < b)
    assert (a.encode() == b.encode()) == (a == b)


steps = st.lists(
    st.tuples(st.booleans(), st.integers(0, 10_000), st.one_of(st.none(), clocks)),
    min_size=1,
    max_size=50,
)


@FAST
@given(st.integers(0, 10**13), steps)
def test_monotonic_under_any_sequence(start: int, seq: list[tuple[bool, int, HLC | None]]) -> None:
    local: HLC | None = None
    for is_receive, jitter, remote in seq:
        now = max(0, start + jitter - 5_000)  # wall clock may jump backwards and forwards
        try:
            if is_receive and remote is not None:
                new = receive(local, remote, now, "dev-a1")
                assert (new.wall_ms, new.counter) > (remote.wall_ms, remote.counter)
                assert new.wall_ms == max(now, remote.wall_ms, local.wall_ms if local else 0)
            else:
                new = tick(local, now, "dev-a1")
                assert new.wall_ms == max(now, local.wall_ms if local else 0)
        except HLCError as exc:
            assert "overflow" in str(exc)
            return
        if local is not None:
            assert (new.wall_ms, new.counter) > (local.wall_ms, local.counter)
            assert new > local
            assert new.encode() > local.encode()
        local = new
