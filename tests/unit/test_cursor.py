"""The cursor codec: pull cursors (round trips, strict decoding, stable scope hashes), the alert
list's page cursors and the alert stream's event ids."""

from __future__ import annotations

import base64
import random

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sync.cursor import (
    ALERT_PAGE,
    HOUSEHOLD_PAGE,
    MAX_LEN,
    PULL,
    SEQ_LIMIT,
    STREAM,
    WORKER_PAGE,
    Cursor,
    CursorError,
    Format,
    T,
    decode,
    encode,
    scope_hash,
)

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


# ---------------------------------------------------------------- the named formats

ids = st.integers(0, SEQ_LIMIT - 1)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_pull_is_the_module_codec() -> None:
    c = Cursor(5, 6, "x", 7)
    assert PULL.encode(c) == encode(c)
    assert PULL.decode(encode(c)) == c
    assert {PULL.name, ALERT_PAGE.name, STREAM.name} == {"pull", "alert-page", "stream"}


@FAST
@given(ids)
def test_alert_page_round_trip(alert_id: int) -> None:
    s = ALERT_PAGE.encode(alert_id)
    assert s == _b64(f"a1:{alert_id}")
    assert "=" not in s and s.isascii()
    assert ALERT_PAGE.decode(s) == alert_id


@FAST
@given(ids, ids)
def test_stream_round_trip(txid: int, seq: int) -> None:
    s = STREAM.encode((txid, seq))
    assert s == f"{txid}.{seq}"
    assert STREAM.decode(s) == (txid, seq)


def test_known_texts() -> None:
    assert ALERT_PAGE.encode(5) == "YTE6NQ"
    assert STREAM.encode((0, 0)) == "0.0"
    assert STREAM.encode((2**63 - 1, 1)) == "9223372036854775807.1"


@pytest.mark.parametrize(
    ("text", "alert_id"),
    [
        ("YTE6NQ", 5),
        ("YTE6NQ==", 5),  # padded
        ("YT!E6NQ==", 5),  # a character outside the alphabet, ignored
        (_b64("a1:007"), 7),  # leading zeros
        (_b64(f"a1:{2**63 - 1}"), 2**63 - 1),
    ],
)
def test_alert_page_reads_what_it_read_before(text: str, alert_id: int) -> None:
    assert ALERT_PAGE.decode(text) == alert_id
    # encoding gives the canonical text of the same page
    assert ALERT_PAGE.decode(ALERT_PAGE.encode(alert_id)) == alert_id


@pytest.mark.parametrize(("text", "position"), [("007.01", (7, 1)), ("00.00", (0, 0))])
def test_stream_reads_leading_zeros(text: str, position: tuple[int, int]) -> None:
    assert STREAM.decode(text) == position
    assert STREAM.decode(STREAM.encode(position)) == position


def _earlier_alert_page(cursor: str) -> int | None:
    """The alert list's cursor as earlier releases read it (None: refused)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, number = text.split(":", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    if tag != "a1" or not number.isascii() or not number.isdigit() or len(number) > 19:
        return None
    return int(number) if int(number) < 2**63 else None


def _earlier_stream(raw: str) -> tuple[int, int] | None:
    txid, _, seq = raw.partition(".")
    parts = [int(p) for p in (txid, seq) if p.isascii() and p.isdigit() and len(p) <= 19]
    return (parts[0], parts[1]) if len(parts) == 2 and max(parts) < 2**63 else None


def _refused(fmt: Format[T], text: str) -> T | None:
    try:
        return fmt.decode(text)
    except CursorError:
        return None


@FAST
@given(
    st.one_of(
        st.text(alphabet="YTE6NQMTo0123456789-_=!+/ a1:", max_size=24),
        st.builds(_b64, st.text(alphabet="a1:0123456789-٣ .", max_size=24)),
    )
)
@example(_b64("a1:007"))
def test_alert_page_reads_exactly_what_it_read_before(text: str) -> None:
    assert _refused(ALERT_PAGE, text) == _earlier_alert_page(text)


@FAST
@given(st.text(alphabet="0123456789.-+ ٣", max_size=45))
@example("9223372036854775807.9223372036854775807")
@example("9223372036854775808.0")
def test_stream_reads_exactly_what_it_read_before(text: str) -> None:
    assert _refused(STREAM, text) == _earlier_stream(text)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "YTE6",  # "a1:" without a number
        _b64("a2:5"),  # unknown version
        _b64("a1:-5"),
        _b64(f"a1:{2**63}"),
        _b64("a1:5.0"),
        _b64("a1:٣"),  # a digit, but not ASCII
        _b64("a15"),
        "YTE6N!Q",  # the ignored character counted in the padding
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_alert_page_rejects(bad: str) -> None:
    with pytest.raises(CursorError):
        ALERT_PAGE.decode(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "5",
        "5.",
        ".5",
        "1.2.3",
        "-1.2",
        "1.-2",
        f"1.{2**63}",
        f"{2**63}.1",
        "1.2 ",
        "٣.1",
        "1,2",
    ],
)
def test_stream_rejects(bad: str) -> None:
    with pytest.raises(CursorError):
        STREAM.decode(bad)


@pytest.mark.parametrize("bad", [-1, 2**63, True, 1.0])
def test_encoders_refuse_out_of_range(bad: int) -> None:
    with pytest.raises(CursorError):
        ALERT_PAGE.encode(bad)
    with pytest.raises(CursorError):
        STREAM.encode((bad, 0))
    with pytest.raises(CursorError):
        STREAM.encode((0, bad))


def test_decoders_refuse_non_str() -> None:
    for fmt in (ALERT_PAGE, STREAM):
        with pytest.raises(CursorError):
            fmt.decode(b"YTE6NQ")  # type: ignore[arg-type]


@FAST
@given(st.text(max_size=40))
@example("YTE6NQ")
@example("1.2")
def test_fuzzed_text_only_raises_cursor_error_and_reencodes(s: str) -> None:
    for fmt in (ALERT_PAGE, STREAM):
        try:
            value = fmt.decode(s)
        except CursorError:
            continue
        # whatever is accepted names a position whose canonical text reads back the same
        assert fmt.decode(fmt.encode(value)) == value  # type: ignore[arg-type]


@given(st.text(min_size=1, max_size=64))
def test_id_pages_round_trip(row_id: str) -> None:
    for fmt in (WORKER_PAGE, HOUSEHOLD_PAGE):
        assert fmt.decode(fmt.encode(row_id)) == row_id


def test_id_pages_known_texts_and_tags() -> None:
    assert WORKER_PAGE.encode("w0746") == "dzE6dzA3NDY"
    assert HOUSEHOLD_PAGE.decode(HOUSEHOLD_PAGE.encode("c33-g16-h05")) == ("c33-g16-h05")
    with pytest.raises(CursorError):  # a worker cursor is not a household cursor
        HOUSEHOLD_PAGE.decode(WORKER_PAGE.encode("w0746"))


@pytest.mark.parametrize("bad", ["", "!!!", "dzE6", "aDE6", "x" * 401, "//8"])
def test_id_pages_reject(bad: str) -> None:
    with pytest.raises(CursorError):
        WORKER_PAGE.decode(bad)


@given(st.text(max_size=80))
def test_id_pages_fuzzed_text_only_raises_cursor_error(s: str) -> None:
    try:
        row_id = WORKER_PAGE.decode(s)
    except CursorError:
        return
    assert row_id and WORKER_PAGE.decode(WORKER_PAGE.encode(row_id)) == row_id
