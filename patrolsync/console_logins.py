"""The demo's console logins: the district's supervisor and one community secretary.

After the demo's check, :func:`offer` makes sure the simulated district has a community
secretary (the import document's first supervisor of a community, or one added for its first
community), then either

- gives both a fresh random password and prints the console's URL with the two logins — a
  local demo's convenience, said so in the output: each password is made for this run, shown
  once on the terminal and never logged (the :class:`Login` repr hides it); or
- (``--no-serve``, or a failed check) prints that the console is served by ``patrolsync
  serve`` on this database, after ``patrolsync set-password`` for these supervisors.

It reads only the import document's shape (``units`` with ``kind``, ``supervisors`` with
``unit``), so a different simulated district needs no change here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server import accounts
from server.clock import wall_ms
from server.store import units
from server.tx import transaction


@dataclass(frozen=True, slots=True)
class Login:
    """One console login; ``password`` never shows in a repr."""

    supervisor_id: str
    name: str
    unit_name: str
    password: str = field(repr=False)


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        out.append(node)
        out.extend(_walk(node.get("children", [])))
    return out


def supervisors(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The district's supervisor (of the root unit), a community's secretary, and whether that
    secretary must be added (the document has none): each as ``{"id", "name", "unit"}``."""
    tree = _walk(doc["units"])
    names = {u["id"]: u["name"] for u in tree}
    root = doc["units"][0]["id"]
    district = next(s for s in doc["supervisors"] if s["unit"] == root)
    communities = [u["id"] for u in tree if u.get("kind") == "community"]
    inside = [s for c in communities for s in doc["supervisors"] if s["unit"] == c]
    if inside:
        return district, inside[0], False
    first = communities[0]
    return district, {"id": f"sup-{first}", "name": f"{names[first]}书记", "unit": first}, True


async def _logins(engine: AsyncEngine, doc: dict[str, Any]) -> list[Login]:
    district, secretary, _ = supervisors(doc)
    names = {u["id"]: u["name"] for u in _walk(doc["units"])}
    out = []
    for who in (district, secretary):
        password = secrets.token_urlsafe(12)  # 16 characters, above the minimum length
        hashed = await accounts.hash_for(password)

        async def store(conn: AsyncConnection, sid: str = who["id"], h: str = hashed) -> None:
            await accounts.set_password(conn, sid, h, wall_ms())

        await transaction(engine, store)
        out.append(Login(who["id"], who["name"], names[who["unit"]], password))
    return out


async def offer(
    engine: AsyncEngine, doc: dict[str, Any], console: Console, base: str | None
) -> list[Login]:
    """Add the community secretary if needed; with ``base`` (the demo keeps serving there) set
    and print both logins, else print how the console is served. Returns the logins set."""
    district, secretary, missing = supervisors(doc)
    if missing:
        row = {"id": secretary["id"], "name": secretary["name"], "unit_id": secretary["unit"]}

        async def add(conn: AsyncConnection) -> None:
            await units.upsert_supervisors(conn, [row])

        await transaction(engine, add)
    if base is None:
        console.print(
            "console: served by [bold]patrolsync serve[/] on this database at /, after "
            f"[bold]patrolsync set-password {district['id']}[/] (the district) or "
            f"[bold]{secretary['id']}[/] (a community secretary)",
            highlight=False,
        )
        return []
    logins = await _logins(engine, doc)
    console.print(f"[bold]console[/]:    {base}/   (本周概览: the simulated week is 上周)")
    for login in logins:
        console.print(
            f"  log in as {login.supervisor_id} ({escape(login.name)}, "
            f"{escape(login.unit_name)})   password: {escape(login.password)}",
            soft_wrap=True,
            highlight=False,
        )
    console.print(
        "  (a local demo: these passwords are made at random for this run, shown only here"
        " and never logged)",
        highlight=False,
    )
    return logins
