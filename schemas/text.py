"""Strings the API stores or looks up: which characters they may hold.

PostgreSQL's text columns cannot hold U+0000, so no stored string carries it, on either backend
(a body holding one is refused with 422 ``invalid_request`` before anything is written). Ids hold
no control character at all (U+0000-U+001F, U+007F); free text (notes, comments) holds no C0
control character other than tab, line feed and carriage return (the push protocol's rule).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

CONTROL = r"\x00-\x1f\x7f"
"""The characters no id holds (a regular-expression class body): C0 controls and DEL."""
TEXT_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f"
"""The characters no free text holds: C0 controls other than tab, line feed, carriage return."""
NO_CONTROL = rf"^[^{CONTROL}]*\Z"
FREE_TEXT = rf"^[^{TEXT_CONTROL}]*\Z"
r"""Patterns end in ``\Z``: Python's ``$`` also matches before a final line break. (The OpenAPI
document shows them with ``$``, which means the end of the string in ECMA regular expressions.)"""

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_CONTROL)]
"""The id of a unit or a worker."""
Label = Annotated[str, Meta(max_length=64, pattern=NO_CONTROL)]
"""A short label on one line (a device's platform)."""


def free_text(max_length: int, min_length: int = 0) -> Meta:
    """The constraints of a free text of at most ``max_length`` characters."""
    return Meta(min_length=min_length, max_length=max_length, pattern=FREE_TEXT)
