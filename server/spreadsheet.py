"""CSV for spreadsheets. A text cell that begins with a character a spreadsheet reads as the
start of a formula (``=``, ``+``, ``-``, ``@``, TAB, CR) is written with a leading ``'`` so it
opens as text (OWASP, "CSV Injection"). Numbers are written as they are. Every CSV the product
writes goes through :func:`to_csv`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import TypeVar

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

T = TypeVar("T")


def cell(value: T) -> T | str:
    """``value`` as it may be written: text that starts a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The header, then each row, every cell passed through :func:`cell`; ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([cell(h) for h in header])
    writer.writerows([cell(v) for v in row] for row in rows)
    return buffer.getvalue()


BOM = "\ufeff"
"""The UTF-8 byte order mark: Excel on a Chinese Windows reads a CSV as UTF-8 only after it."""


def to_csv_bytes(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, bom: bool = True
) -> bytes:
    """:func:`to_csv` as UTF-8, after the :data:`BOM` unless ``bom`` is False."""
    return ((BOM if bom else "") + to_csv(header, rows)).encode()
