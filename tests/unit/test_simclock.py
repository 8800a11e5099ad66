"""The demo's simulated clock: it runs with the wall clock, jumps forward, never goes back."""

from __future__ import annotations

import pytest

from patrolsync.simclock import SimClock


def test_the_clock_runs_on_from_its_start_and_from_each_jump() -> None:
    wall = [1_000]
    clock = SimClock(50_000, wall=lambda: wall[0])
    assert clock.now() == 50_000
    wall[0] += 7
    assert clock.now() == 50_007
    clock.jump_to(90_000)
    assert clock.now() == 90_000
    wall[0] += 3
    assert clock.now() == 90_003


def test_the_clock_never_goes_back() -> None:
    wall = [0]
    clock = SimClock(10_000, wall=lambda: wall[0])
    clock.jump_to(10_000)  # standing still is allowed
    with pytest.raises(ValueError, match="cannot go back"):
        clock.jump_to(9_999)
    assert clock.now() == 10_000


def test_a_clock_following_the_cell_sees_every_jump() -> None:
    wall = [1_000]
    clock = SimClock(50_000, wall=lambda: wall[0])
    follower = SimClock.following(clock.cell, wall=lambda: wall[0])
    assert follower.now() == 50_000
    clock.jump_to(90_000)
    wall[0] += 5
    assert (clock.now(), follower.now()) == (90_005, 90_005)
