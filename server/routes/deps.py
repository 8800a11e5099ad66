"""What the controllers are given: the caller, the services, a decoded body, and the guards
that admit a role.

Invariants: the caller is authenticated once per request (the guards and the ``who``
dependency share it); guards run before any parameter is validated or body read, so a caller
without a valid token or the role is answered 401 / 403 and never costs a body read; a body is
read as ``wire.read_body`` reads it (size bound, deadline, JSON or MessagePack by its content
type).
"""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler

from server import wire
from server.auth import Principal
from server.state import Services, principal, services

T = TypeVar("T")
Who = NamedDependency[Principal]
"""The caller (``who``)."""
Svc = NamedDependency[Services]
"""The services (``svc``)."""
Subtree = NamedDependency[tuple[str, ...]]
"""The paths of the subtrees the calling supervisor sees (``subtree``): their own unit's
first, then those of the units granted them."""
_KEY = "principal"
"""Where the request's state keeps the caller once authenticated."""


async def caller(request: Request[Any, Any, Any]) -> Principal:
    """The caller, from its bearer token (401 if missing, unknown or revoked); read once."""
    return await _caller(request)


async def _caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    state = connection.state
    found = state.get(_KEY)
    if not isinstance(found, Principal):
        found = state[_KEY] = await principal(connection)
    return found


async def requires_supervisor(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: 401 without a valid token, 403 ``forbidden`` unless the caller supervises."""
    (await _caller(connection)).require_supervisor()


async def requires_device(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: 401 without a valid token, 403 ``forbidden`` unless the caller is a device."""
    (await _caller(connection)).require_device()


def provide_services(request: Request[Any, Any, Any]) -> Services:
    return services(request)


async def provide_subtree(who: Who) -> tuple[str, ...]:
    """The paths of the subtrees the caller sees (the guard has admitted a supervisor)."""
    return who.require_supervisor()


def body(kind: type[T]) -> Provide:
    """A dependency: the request body decoded as ``kind`` (413, 408, 415, 400, 422 as
    ``wire.read_body`` answers); the handler's parameter is ``NamedDependency[kind]``."""

    async def read(request: Request[Any, Any, Any]) -> Any:
        timeout_s = services(request).settings.body_timeout_s
        return await wire.read_body(request, kind, timeout_s=timeout_s)

    return Provide(read)


SUPERVISOR: dict[str, Provide] = {
    "who": Provide(caller),
    "svc": Provide(provide_services, sync_to_thread=False),
    "subtree": Provide(provide_subtree),
}
"""The dependencies of every supervisors' controller."""
