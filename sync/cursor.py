"""The cursors: one codec, named formats of a position in text.

Every format is a :class:`Format` (``encode`` a value to text, ``decode`` text back, raising
:class:`CursorError`, never anything else, on text it does not accept). Clients hold these texts
across releases, so a format's produced and accepted texts never change.

:data:`PULL` — the opaque pull cursor (:class:`Cursor`). It tells the server where a device's
pull stopped: the position ``(txid, seq)`` of the last change it has received — the writing
transaction's number and the change's number within it; ``(0, 0)`` = from the beginning — and a
short hash of the device's scope (so a cursor issued for one scope is not silently reused for
another), and the server's prune epoch when it was issued (so the server can tell a cursor that
predates forgotten history from one that began after it). The text form is url-safe base64
without padding of the msgpack array ``[1, txid, seq, scope, epoch]`` (1 = format version).
Invariants: ``0 <= txid, seq, epoch < 2**63``; ``scope`` is 1-64 printable ASCII characters; the
text form is at most 200 characters; decoding accepts exactly the strings encoding produces
(canonical form only).

:data:`ALERT_PAGE` — the alert list's page cursor: the id of the last alert of a page (the next
page holds smaller ids). The text form is url-safe base64 without padding of ``a1:<id>`` (``a1``
= format version), ``0 <= id < 2**63``. Decoding reads the base64 leniently (padding and
characters outside the alphabet are ignored; leading zeros of the id accepted), so every text it
accepted before still reads; encoding produces the one canonical text.

:data:`STREAM` — the alert stream's event ids (``id:`` of each server-sent event, sent back as
``Last-Event-ID`` or ``after``): the change position ``(txid, seq)`` as ``<txid>.<seq>`` in ASCII
decimal, each part ``0 <= n < 2**63`` (at most 19 digits, leading zeros accepted); encoding
produces the canonical text (no leading zeros).

:data:`WORKER_PAGE`, :data:`HOUSEHOLD_PAGE` — the supervisors' lists of workers and households,
ordered by id: the id of the last row of a page (the next page holds larger ids). The text form
is url-safe base64 without padding of ``w1:<id>`` / ``h1:<id>`` (UTF-8; the id non-empty), at
most :data:`ID_PAGE_MAX_LEN` characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

VERSION = 1
MAX_LEN = 200
SEQ_LIMIT = 2**63

_SCOPE_RE = re.compile(r"[\x20-\x7e]{1,64}")
_B64_RE = re.compile(r"[A-Za-z0-9_-]*")


T = TypeVar("T")

BIGINT_MAX = SEQ_LIMIT - 1
"""The largest value of a BIGINT column (and of SQLite's INTEGER): every position and id."""


class CursorError(ValueError):
    """A cursor that is malformed, of an unknown version, or out of range."""


def bigint(text: str) -> int | None:
    """``text`` as a non-negative integer within BIGINT, or None (only ASCII digits count): the
    numbers of the alert list's cursor and the alert stream's positions."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= BIGINT_MAX else None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position of a device's pull. Validated on construction (:class:`CursorError`)."""

    txid: int
    seq: int
    scope: str
    epoch: int = 0

    def __post_init__(self) -> None:
        if type(self.epoch) is not int or not 0 <= self.epoch < SEQ_LIMIT:
            raise CursorError(f"epoch out of range: {self.epoch!r}")
        if type(self.txid) is not int or not 0 <= self.txid < SEQ_LIMIT:
            raise CursorError(f"txid out of range: {self.txid!r}")
        if type(self.seq) is not int or not 0 <= self.seq < SEQ_LIMIT:
            raise CursorError(f"seq out of range: {self.seq!r}")
        if not isinstance(self.scope, str) or _SCOPE_RE.fullmatch(self.scope) is None:
            raise CursorError(f"invalid scope: {self.scope!r}")


@dataclass(frozen=True, slots=True)
class Format(Generic[T]):
    """A named text form of a position: ``decode(encode(v)) == v`` for every valid ``v``;
    ``decode`` raises :class:`CursorError` on any text it does not accept."""

    name: str
    encode: Callable[[T], str]
    decode: Callable[[str], T]


def encode(c: Cursor) -> str:
    """Text form of ``c``: unpadded url-safe base64 of msgpack ``[1, txid, seq, scope, epoch]``."""
    raw = msgspec.msgpack.encode([VERSION, c.txid, c.seq, c.scope, c.epoch])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(s: str) -> Cursor:
    """Inverse of :func:`encode`; raises :class:`CursorError` on anything else."""
    if not isinstance(s, str):
        raise CursorError("cursor must be a string")
    if len(s) > MAX_LEN:
        raise CursorError("cursor too long")
    if _B64_RE.fullmatch(s) is None or len(s) % 4 == 1:
        raise CursorError("cursor is not url-safe base64")
    try:
        raw = base64.b64decode(s + "=" * (-len(s) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not url-safe base64") from exc
    try:
        obj = msgspec.msgpack.decode(raw)
    except (msgspec.MsgspecError, ValueError, TypeError, RecursionError) as exc:
        raise CursorError("cursor is not msgpack") from exc
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int:
        raise CursorError("cursor has the wrong shape")
    if obj[0] != VERSION:
        raise CursorError(f"unknown cursor version {obj[0]}")
    if (
        len(obj) != 5
        or type(obj[1]) is not int
        or type(obj[2]) is not int
        or type(obj[3]) is not str
        or type(obj[4]) is not int
    ):
        raise CursorError("cursor has the wrong shape")
    if obj[1] < 0 or obj[2] < 0 or obj[4] < 0:
        raise CursorError("negative position or epoch")
    cursor = Cursor(obj[1], obj[2], obj[3], obj[4])
    if encode(cursor) != s:
        raise CursorError("cursor is not in canonical form")
    return cursor


PULL: Format[Cursor] = Format("pull", encode, decode)


def _encode_alert_page(alert_id: int) -> str:
    if type(alert_id) is not int or not 0 <= alert_id <= BIGINT_MAX:
        raise CursorError(f"alert id out of range: {alert_id!r}")
    return base64.urlsafe_b64encode(f"a1:{alert_id}".encode()).decode().rstrip("=")


def _decode_alert_page(s: str) -> int:
    if not isinstance(s, str):
        raise CursorError("cursor must be a string")
    try:
        text = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()
        tag, number = text.split(":", 1)
    except (ValueError, UnicodeDecodeError):
        tag, number = "", ""
    alert_id = bigint(number) if tag == "a1" else None
    if alert_id is None:
        raise CursorError("unreadable alert cursor")
    return alert_id


ALERT_PAGE: Format[int] = Format("alert-page", _encode_alert_page, _decode_alert_page)


def _encode_stream(position: tuple[int, int]) -> str:
    txid, seq = position
    for n in (txid, seq):
        if type(n) is not int or not 0 <= n <= BIGINT_MAX:
            raise CursorError(f"stream position out of range: {position!r}")
    return f"{txid}.{seq}"


def _decode_stream(s: str) -> tuple[int, int]:
    if not isinstance(s, str):
        raise CursorError("event id must be a string")
    txid, _, seq = s.partition(".")
    position = (bigint(txid), bigint(seq))
    if position[0] is None or position[1] is None:
        raise CursorError("not an event id of the alert stream")
    return position[0], position[1]


STREAM: Format[tuple[int, int]] = Format("stream", _encode_stream, _decode_stream)


ID_PAGE_MAX_LEN = 400
"""The longest id page cursor: an id of 64 characters of up to 4 UTF-8 bytes each."""


def _id_page(name: str, tag: str) -> Format[str]:
    """The page cursor ``<tag>:<id>`` of a list ordered by a text id."""

    def encode_id(row_id: str) -> str:
        if not isinstance(row_id, str) or not row_id:
            raise CursorError(f"{name}: id must be a non-empty string")
        return base64.urlsafe_b64encode(f"{tag}:{row_id}".encode()).decode().rstrip("=")

    def decode_id(s: str) -> str:
        if not isinstance(s, str) or len(s) > ID_PAGE_MAX_LEN:
            raise CursorError(f"unreadable {name} cursor")
        try:
            text = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            text = ""
        found, _, row_id = text.partition(":")
        if found != tag or not row_id:
            raise CursorError(f"unreadable {name} cursor")
        return row_id

    return Format(name, encode_id, decode_id)


WORKER_PAGE: Format[str] = _id_page("worker-page", "w1")
HOUSEHOLD_PAGE: Format[str] = _id_page("household-page", "h1")


def scope_hash(parts: Iterable[str]) -> str:
    """Stable short hash of a scope: first 16 hex chars of the SHA-256 of the JSON array of the
    sorted, deduplicated parts (``json.dumps(sorted(set(parts)), ensure_ascii=False,
    separators=(",", ":"))`` as UTF-8). Order and repetition of ``parts`` do not matter.
    A bare ``str`` is refused (``TypeError``): it would be hashed character by character.
    """
    if isinstance(parts, str):
        raise TypeError("scope_hash() takes an iterable of strings, not a string")
    items = sorted(set(parts))
    if not all(isinstance(p, str) for p in items):
        raise TypeError("scope parts must be strings")
    doc = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:16]
