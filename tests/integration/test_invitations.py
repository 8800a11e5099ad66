"""Invitations on both databases: only for a unit strictly inside the inviter's subtree, the
token stored hashed, usable once and not after it expires, an existing id never overwritten."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server import invitations, sessions
from server.errors import ApiError, Code
from server.store import console as console_store
from server.store import units
from server.store.tables import invitation_t
from server.tx import read, transaction

NOW = 1_800_000_000_000
XINHUA = "/jintai/dongfeng/xinhua/"


async def _subtree(engine: AsyncEngine, unit_id: str) -> str:
    found = await read(engine, lambda c: units.get_unit(c, unit_id))
    assert found is not None
    return found.path


async def _invite(engine: AsyncEngine, unit_id: str, sid: str = "s-new") -> invitations.Invited:
    subtree = await _subtree(engine, "xinhua")
    return await transaction(
        engine,
        lambda c: invitations.invite(
            c,
            inviter_id="s-xinhua",
            inviter_subtree=subtree,
            supervisor_id=sid,
            name="新网格长",
            unit_id=unit_id,
            now_ms=NOW,
        ),
    )


async def test_an_invitation_is_used_once_and_stored_hashed(engine: AsyncEngine) -> None:
    made = await _invite(engine, "xinhua-g1")
    assert made.expires_ms == NOW + invitations.TTL_MS
    stored = await read(engine, lambda c: c.execute(sa.select(invitation_t.c.token_hash)))
    hashes = [r[0] for r in stored]
    assert len(hashes) == 1 and made.token not in hashes[0]
    who = await read(engine, lambda c: units.get_supervisor(c, "s-new"))
    assert who == units.SupervisorRow("s-new", "新网格长", "xinhua-g1")
    hashed = sessions.hash_password("新网格长的密码-123")
    got = await transaction(engine, lambda c: invitations.accept(c, made.token, hashed, NOW + 1))
    assert got == "s-new"
    assert await read(engine, lambda c: console_store.password_hash(c, "s-new")) == hashed
    with pytest.raises(ApiError) as again:
        await transaction(engine, lambda c: invitations.accept(c, made.token, "x", NOW + 2))
    assert again.value.code is Code.NOT_FOUND
    assert await read(engine, lambda c: console_store.password_hash(c, "s-new")) == hashed


async def test_an_expired_or_unknown_token_sets_nothing(engine: AsyncEngine) -> None:
    made = await _invite(engine, "xinhua-g2")
    for token, at in ((made.token, made.expires_ms), ("not-a-token", NOW)):
        with pytest.raises(ApiError) as refused:
            await transaction(engine, lambda c, t=token, a=at: invitations.accept(c, t, "h", a))
        assert refused.value.code is Code.NOT_FOUND
    assert await read(engine, lambda c: console_store.password_hash(c, "s-new")) is None


@pytest.mark.parametrize(
    ("unit_id", "sid", "code", "field"),
    [
        ("qunzhong-g1", "s-new", Code.NOT_FOUND, None),  # another community
        ("dongfeng", "s-new", Code.NOT_FOUND, None),  # above the inviter
        ("xinhua", "s-new", Code.INVALID_REQUEST, "unit"),  # the inviter's own unit
        ("xinhua-g1", "s-qunzhong", Code.CONFLICT, "id"),  # an existing supervisor
        ("xinhua-g1", "S New", Code.INVALID_REQUEST, "id"),
    ],
)
async def test_no_invitation_outside_the_subtree_nor_over_an_account(
    engine: AsyncEngine, unit_id: str, sid: str, code: Code, field: str | None
) -> None:
    with pytest.raises(ApiError) as refused:
        await _invite(engine, unit_id, sid)
    assert refused.value.code is code
    assert (refused.value.details or {}).get("field") == field
    who = await read(engine, lambda c: units.get_supervisor(c, "s-qunzhong"))
    assert who is not None and who.unit_id == "qunzhong"  # untouched
    assert await read(engine, lambda c: units.get_supervisor(c, "s-new")) is None
    rows = await read(
        engine, lambda c: c.execute(sa.select(sa.func.count()).select_from(invitation_t))
    )
    assert rows.scalar_one() == 0
