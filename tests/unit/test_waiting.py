"""The register of waiting pulls on its own: a notice wakes exactly the pulls under its keys, and
a pull that takes its place after a notice it could not have seen is woken at once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from server.live import Listener
from server.waiting import EVERYONE, MAX_PAYLOAD, RECENT, Waiters, payload, pull_keys


def _waiters() -> Waiters:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    return Waiters(Listener(engine, check_s=1.0), max_waiting=10)


def test_scope_keys_of_a_device_and_of_a_supervisor() -> None:
    assert pull_keys("w1", ["g1", "g2"]) == {"w:w1", "g:g1", "g:g2"}
    assert pull_keys(None, ["g1"]) == {"g:g1", "c:g1"}


def test_a_long_notice_wakes_everyone() -> None:
    assert payload(7, ["w:a", "g:b"]) == "7\ng:b\nw:a"
    assert payload(7, [f"g:{'x' * 60}{i}" for i in range(200)]) == f"7\n{EVERYONE}"
    assert len(payload(7, [f"g:{i}" for i in range(100)]).encode()) <= MAX_PAYLOAD


async def test_a_notice_wakes_only_the_pulls_under_its_keys() -> None:
    waits = _waiters()
    async with (
        waits.waiting_for(pull_keys("w1", ["g1"]), seen=0, mark=waits.mark()) as mine,
        waits.waiting_for(pull_keys("w2", ["g2"]), seen=0, mark=waits.mark()) as theirs,
    ):
        waits.changed(5, ["w:w1", "c:g1"])
        assert (mine.woken, mine.txid, theirs.woken) == (1, 5, 0)
        waits._notified("6\ng:g2")
        assert (mine.woken, theirs.woken, theirs.txid) == (1, 1, 6)
        waits._notified("7\n*")
        assert (mine.woken, theirs.woken) == (2, 2)
    assert waits.waiting == 0


async def test_a_pull_is_woken_by_a_notice_between_its_read_and_its_wait() -> None:
    waits = _waiters()
    mark = waits.mark()
    waits.changed(10, ["w:w1"])  # committed while the pull read (its bound: 9 and below)
    async with waits.waiting_for(pull_keys("w1", []), seen=9, mark=mark) as late:
        assert (late.woken, late.txid) == (1, 10)
    async with waits.waiting_for(pull_keys("w1", []), seen=10, mark=waits.mark()) as read:
        assert read.woken == 0  # its read saw transaction 10
    async with waits.waiting_for(pull_keys("w2", []), seen=9, mark=mark) as other:
        assert other.woken == 0  # not its scope


async def test_a_pull_that_cannot_rule_out_a_lost_notice_reads_again() -> None:
    waits = _waiters()
    mark = waits.mark()
    waits.wake_all()  # the listener resumed: notices may have been lost meanwhile
    async with waits.waiting_for(pull_keys("w1", []), seen=9, mark=mark) as resumed:
        assert resumed.woken == 1
    for txid in range(20, 20 + RECENT + 1):  # one notice more than the register keeps
        waits.changed(txid, ["w:other"])
    async with waits.waiting_for(pull_keys("w1", []), seen=15, mark=waits.mark()) as gap:
        assert gap.woken == 1  # the forgotten one (txid 20) might have been its


def test_a_live_pulls_wait_ends_a_little_early_at_random_never_late() -> None:
    from server.routes.sync import WAIT_JITTER, waited_s

    assert waited_s(30, 0.0) == 30
    assert waited_s(30, 0.5) == 30 * (1 - WAIT_JITTER / 2)
    assert waited_s(30, 0.999) > 30 * (1 - WAIT_JITTER)
    # Waits begun together end apart: a spread of draws gives a spread of ends, all in range.
    ends = [waited_s(25, i / 100) for i in range(100)]
    assert len(set(ends)) == 100
    assert all(25 * (1 - WAIT_JITTER) < end <= 25 for end in ends)
