"""Page cursors of the supervisors' lists, read at the HTTP boundary: the named formats of
``sync.cursor`` with an unreadable cursor answered 400 ``cursor_invalid`` (never a 500)."""

from __future__ import annotations

from typing import TypeVar

from server.errors import ApiError, Code
from sync import cursor as cursors

T = TypeVar("T")


def after(fmt: cursors.Format[T], cursor: str | None) -> T | None:
    """The position ``cursor`` names in ``fmt`` (None for the first page), or 400
    ``cursor_invalid``."""
    if not cursor:
        return None
    try:
        return fmt.decode(cursor)
    except cursors.CursorError:
        raise ApiError(Code.CURSOR_INVALID, f"unreadable {fmt.name} cursor") from None
