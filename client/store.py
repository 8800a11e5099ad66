"""The device's local SQLite store: settings, the outbox, the push in flight, server records.

Invariants:

* An item enters the outbox when the user saves, and leaves it only when the server answered it
  (applied, duplicate, merged: done; rejected: moved to ``rejected``, kept for the app to show).
* A push in flight (``inflight``) is written before it is sent and kept until its reply is
  handled: after a crash or a lost reply the same push (same push id, same items) is sent again,
  and the server answers it from its receipt.
* Server records (``record``) are what pulls and merged results delivered; a re-bootstrap drops
  them (and the cursor) but never the outbox.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

_json = msgspec.json.Encoder()
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL, created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inflight (
    id INTEGER PRIMARY KEY CHECK (id = 1), push_id TEXT NOT NULL, seqs TEXT NOT NULL,
    complete INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS record (
    kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY, item TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL
);
"""


class LocalStore:
    """One device's data, in one SQLite file (``":memory:"`` for tests and simulations)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- settings
    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- the outbox
    def enqueue(self, item: dict[str, Any], now_ms: int) -> int:
        cur = self._db.execute(
            "INSERT INTO outbox (item, created_ms) VALUES (?, ?)",
            (_json.encode(item).decode(), now_ms),
        )
        return int(cur.lastrowid or 0)

    def waiting(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def oldest(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT seq, item FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [(int(seq), msgspec.json.decode(item)) for seq, item in rows]

    # -- the push in flight
    def begin_push(self, push_id: str, seqs: Sequence[int], complete: bool) -> None:
        """Record the push about to be sent: its id and items (outbox rows) are fixed from now
        until its reply is handled."""
        self._db.execute(
            "INSERT INTO inflight (id, push_id, seqs, complete) VALUES (1, ?, ?, ?)",
            (push_id, _json.encode(list(seqs)).decode(), int(complete)),
        )

    def inflight(self) -> tuple[str, list[tuple[int, dict[str, Any]]], bool] | None:
        """The push in flight: its id, its items (with their outbox rows), and ``complete``."""
        row = self._db.execute("SELECT push_id, seqs, complete FROM inflight").fetchone()
        if row is None:
            return None
        seqs = list(msgspec.json.decode(row[1]))
        items = dict(self.items(seqs))
        return str(row[0]), [(seq, items[seq]) for seq in seqs], bool(row[2])

    def items(self, seqs: Sequence[int]) -> list[tuple[int, dict[str, Any]]]:
        marks = ",".join("?" * len(seqs))
        rows = self._db.execute(
            f"SELECT seq, item FROM outbox WHERE seq IN ({marks}) ORDER BY seq", list(seqs)
        ).fetchall()
        return [(int(seq), msgspec.json.decode(item)) for seq, item in rows]

    def abandon_push(self) -> None:
        """The push in flight was refused whole, nothing written (e.g. 413): it may be cut up."""
        self._db.execute("DELETE FROM inflight")

    def finish_push(
        self,
        done: Sequence[int],
        rejected: Sequence[tuple[int, str, str]],
        records: Sequence[tuple[str, str, Any]],
    ) -> None:
        """The reply of the push in flight, handled in one transaction: answered items leave the
        outbox (rejected ones into ``rejected``), merged records are stored."""
        with self._tx() as db:
            for seq, code, reason in rejected:
                db.execute(
                    "INSERT OR REPLACE INTO rejected (seq, item, code, reason)"
                    " SELECT seq, item, ?, ? FROM outbox WHERE seq = ?",
                    (code, reason, seq),
                )
            gone = [*done, *(r[0] for r in rejected)]
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in gone])
            self._put_records(db, records)
            db.execute("DELETE FROM inflight")

    def rejected(self) -> list[tuple[dict[str, Any], str, str]]:
        rows = self._db.execute("SELECT item, code, reason FROM rejected ORDER BY seq").fetchall()
        return [(msgspec.json.decode(item), str(code), str(reason)) for item, code, reason in rows]

    # -- server records
    @staticmethod
    def _put_records(db: sqlite3.Connection, records: Sequence[tuple[str, str, Any]]) -> None:
        db.executemany(
            "INSERT INTO record (kind, id, body) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
            [(kind, rid, _json.encode(body).decode()) for kind, rid, body in records],
        )

    def apply_page(self, records: Sequence[tuple[str, str, Any]], cursor: str) -> None:
        """A pulled page and the cursor after it, together: a crash never loses one of them."""
        with self._tx() as db:
            self._put_records(db, records)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('cursor', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (cursor,),
            )

    def record(self, kind: str, rid: str) -> Any | None:
        row = self._db.execute(
            "SELECT body FROM record WHERE kind = ? AND id = ?", (kind, rid)
        ).fetchone()
        return None if row is None else msgspec.json.decode(row[0])

    def records(self, kind: str) -> list[Any]:
        rows = self._db.execute("SELECT body FROM record WHERE kind = ? ORDER BY id", (kind,))
        return [msgspec.json.decode(body) for (body,) in rows]

    def drop_server_data(self) -> None:
        """Re-bootstrap: forget every server record and the cursor (the outbox stays)."""
        with self._tx() as db:
            db.execute("DELETE FROM record")
            db.execute("DELETE FROM meta WHERE key = 'cursor'")
