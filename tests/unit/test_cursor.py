"""Pull cursors: round trips, strict decoding, stable scope hashes."""

from __future__ import annotations

import base64
import random

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sync.cursor import MAX_LEN, SEQ_LIMIT, Cursor, CursorError, decode, encode, scope_hash

FAST = settings(max_examples=200, deadline=None)
scopes = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=64
)
cursors = st.builds(
    Cursor,
    st.integers(0, SEQ_LIMIT - 1),
    st.integers(0, SEQ_LIMIT - 1),
    scopes,
    st.integers(0, SEQ_LIMIT - 1),
)


def _pack(obj: object) -> str:
    return base64.urlsafe_b64encode(msgspec.msgpack.encode(obj)).rstrip(b"=").decode()


@FAST
@given(cursors)
def test_round_trip(c: Cursor) -> None:
    s = encode(c)
    assert decode(s) == c
    assert len(s) <= MAX_LEN
    assert "=" not in s and s.isascii()


def test_known_encoding() -> None:
    c = Cursor(1_000_123, 42, scope_hash(["grid:g-001"]))
    assert decode(encode(c)) == c
    assert encode(Cursor(0, 0, "x")) == _pack([1, 0, 0, "x", 0])
    assert encode(Cursor(1, 2, "x", 3)) == _pack([1, 1, 2, "x", 3])


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "!!!!",
        "abc=",  # padding is not allowed
        "a",  # impossible base64 length
        "A" * (MAX_LEN + 1),
        _pack([1, 9, 5, "x", 0]) + "\n",
        _pack([1, 9, 5, "x", 0])[:-1] + "+",  # standard, not url-safe, alphabet
        _pack([1, 9, 5, "x", 0])[:-1] + "/",
        _pack([2, 9, 5, "x", 0]),  # unknown version
        _pack([1, 9, 5, "x"]),  # no epoch
        _pack([1, 9, 5, "x", -1]),  # negative epoch
        _pack([1, 9, 5, "x", "0"]),
        _pack([1, 9, -1, "x", 0]),  # negative seq
        _pack([1, -1, 5, "x", 0]),  # negative txid
        _pack([1, 5, "x"]),  # no txid
        _pack([1, 9, 5]),
        _pack([1, 9, 5, "x", 0, 0]),
        _pack([1, 9, "5", "x", 0]),
        _pack([1, 9, 5, 7]),
        _pack([1, 9, 5, ""]),
        _pack([1, 9, 5, "x" * 65]),
        _pack([True, 9, 5, "x"]),
        _pack([1, 9, True, "x"]),
        _pack([1, True, 5, "x"]),
        _pack([1, 9, 5.0, "x"]),
        _pack({"v": 1}),
        _pack([]),
        _pack("hello"),
        _pack([1, 9, 2**64 - 1, "x"]),
        base64.urlsafe_b64encode(b"\xc1").rstrip(b"=").decode(),  # reserved msgpack byte
        base64.urlsafe_b64encode(b"\x93\x01").rstrip(b"=").decode(),  # truncated
        base64.urlsafe_b64encode(msgspec.msgpack.encode([1, 9, 5, "x", 0]) + b"\x00").decode(),
    ],
)
def test_decode_rejects(bad: str) -> None:
    with pytest.raises(CursorError):
        decode(bad)


def test_decode_rejects_non_canonical_base64() -> None:
    # a cursor whose last base64 character carries unused bits (byte length not a multiple of 3)
    s = next(
        encode(c)
        for c in (Cursor(3, 7, "abc" + "x" * n) for n in range(3))
        if len(msgspec.msgpack.encode([1, c.txid, c.seq, c.scope, c.epoch])) % 3
    )
    tail = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # flip unused low bits of the last character: same bytes, different text
    idx = tail.index(s[-1])
    variants = [s[:-1] + tail[idx ^ b] for b in (1, 2, 3)]
    decodable = [v for v in variants if v != s]
    for v in decodable:
        with pytest.raises(CursorError):
            decode(v)


def test_decode_rejects_non_str() -> None:
    with pytest.raises(CursorError):
        decode(b"abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("txid", "seq", "scope"),
    [
        (0, -1, "x"),
        (0, SEQ_LIMIT, "x"),
        (0, True, "x"),
        (-1, 0, "x"),
        (SEQ_LIMIT, 0, "x"),
        (True, 0, "x"),
        (0, 1, ""),
        (0, 1, "é"),
        (0, 1, "x" * 65),
    ],
)
def test_cursor_validates(txid: int, seq: int, scope: str) -> None:
    with pytest.raises(CursorError):
        Cursor(txid, seq, scope)


@FAST
@given(st.text(max_size=250))
@example("lQEJBaF4AA")
def test_fuzzed_text_only_raises_cursor_error(s: str) -> None:
    try:
        c = decode(s)
    except CursorError:
        return
    assert encode(c) == s


@FAST
@given(st.binary(max_size=150))
def test_fuzzed_msgpack_only_raises_cursor_error(raw: bytes) -> None:
    s = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    try:
        c = decode(s)
    except CursorError:
        return
    assert encode(c) == s


@FAST
@given(cursors, st.data())
def test_mutated_cursor_only_raises_cursor_error(c: Cursor, data: st.DataObject) -> None:
    s = encode(c)
    i = data.draw(st.integers(0, len(s) - 1))
    ch = data.draw(st.characters())
    mutated = s[:i] + ch + s[i + 1 :]
    try:
        d = decode(mutated)
    except CursorError:
        return
    assert encode(d) == mutated


def test_scope_hash_is_stable() -> None:
    h = scope_hash(["grid:g-002", "grid:g-001", "grid:g-001"])
    assert h == scope_hash(["grid:g-001", "grid:g-002"])
    assert len(h) == 16 and int(h, 16) >= 0
    assert h != scope_hash(["grid:g-001"])
    assert scope_hash(["a,b"]) != scope_hash(["a", "b"])
    # pinned: changing the hash would invalidate every cursor in the field
    assert scope_hash([]) == "4f53cda18c2baa0c"


@FAST
@given(st.lists(st.text(max_size=10), max_size=6), st.randoms())
def test_scope_hash_ignores_order_and_repeats(parts: list[str], rnd: random.Random) -> None:
    shuffled = parts + parts[:2]
    rnd.shuffle(shuffled)
    assert scope_hash(shuffled) == scope_hash(parts)
    assert Cursor(0, 0, scope_hash(parts)) == decode(encode(Cursor(0, 0, scope_hash(parts))))


def test_scope_hash_refuses_bare_string() -> None:
    with pytest.raises(TypeError):
        scope_hash("grid:g-001")
