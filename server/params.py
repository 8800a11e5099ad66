r"""Path and query parameters of the HTTP API: the one place their bounds are declared.

Litestar checks each parameter against these before the handler runs and answers a value
outside them with 422 ``invalid_request``; the same bounds appear in the OpenAPI document.

Invariants: an id (of a unit, worker or device) is 1-64 characters, none of them a control
character (U+0000-U+001F, U+007F); a filter text may be empty but holds no control character
either; an integer id (alert, webhook) lies in ``[1, BIGINT_MAX]``, the range of the tables'
BIGINT keys. So no parameter reaches the database that a column cannot hold. Patterns end in
``\Z`` (Python's ``$`` also matches before a final line break).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar.params import PathParameter

from schemas.text import CONTROL, NO_CONTROL
from sync.cursor import BIGINT_MAX

ID_MAX_LENGTH = 64
ID_PATTERN = rf"^[^{CONTROL}]+\Z"
"""An id: at least one character, no control character."""
TEXT_PATTERN = NO_CONTROL
"""A filter text: possibly empty, no control character."""
DEVICE_PATTERN = r"^[\x21-\x7e]+\Z"
"""A device id: printable ASCII without spaces, as enrolment accepts it."""


def id_bounds(description: str = "") -> dict[str, Any]:
    """Keyword arguments of a ``QueryParameter`` or ``PathParameter`` that holds an id."""
    return {
        "min_length": 1,
        "max_length": ID_MAX_LENGTH,
        "pattern": ID_PATTERN,
        "description": description or None,
    }


def text_bounds(description: str = "", max_length: int = 200) -> dict[str, Any]:
    """Keyword arguments of a ``QueryParameter`` or ``PathParameter`` that holds a filter text."""
    return {"max_length": max_length, "pattern": TEXT_PATTERN, "description": description or None}


UnitId = Annotated[str, PathParameter(**id_bounds("A unit id (of the caller's subtree)"))]
DeviceId = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=DEVICE_PATTERN,
        description="A device id, as it enrolled",
    ),
]
RowId = Annotated[int, PathParameter(ge=1, le=BIGINT_MAX, description="A numeric id")]

__all__ = ["BIGINT_MAX", "DeviceId", "RowId", "UnitId", "id_bounds", "text_bounds"]
