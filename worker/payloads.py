"""What a job carries through the queue: msgspec Structs, encoded as msgpack bytes.

arq pickles a job's arguments; the job's one argument is the msgpack encoding of its payload
Struct, so what sits in Redis names no Python class and evolves as the wire types do (new
fields get defaults, field types never change).

Invariants:

* :func:`decode_evaluate` accepts what :func:`encode_evaluate` produces, and the list of
  ``[id, version, kind, subject, period]`` lists that earlier releases queued (one release
  reads both; a job of neither shape raises ``msgspec.ValidationError`` and its requests stay in
  the outbox, relayed again after ``relay_retry_s``).
* A payload names outbox requests by ``(id, version)``: the job deletes each at that version
  only, so a request bumped meanwhile is evaluated again.
* An item's ``request_id`` (the HTTP request that asked for it) is for the job's log lines
  only: it is not part of the job's id and changes nothing the job does.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from server.store.outbox import Request


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One outbox request to evaluate: ``kind`` ``week`` (``subject`` a worker, ``period`` an
    ISO week) or ``household`` (``subject`` a household)."""

    id: int
    version: int
    kind: str
    subject: str
    period: str
    request_id: str | None = None


class Evaluate(msgspec.Struct, frozen=True, kw_only=True):
    """The ``evaluate`` job: some outbox requests, evaluated in one transaction."""

    requests: tuple[Item, ...]

    @classmethod
    def of(cls, requests: Iterable[Request]) -> Evaluate:
        return cls(
            requests=tuple(
                Item(
                    id=r.id,
                    version=r.version,
                    kind=r.kind,
                    subject=r.subject,
                    period=r.period,
                    request_id=r.request_id,
                )
                for r in requests
            )
        )

    @property
    def request_ids(self) -> list[str]:
        """The HTTP requests that asked for this job's evaluations, distinct and sorted."""
        return sorted({r.request_id for r in self.requests if r.request_id})


class _LegacyItem(msgspec.Struct, frozen=True, array_like=True):
    """An item as earlier releases queued it: ``[id, version, kind, subject, period]``."""

    id: int
    version: int
    kind: str
    subject: str
    period: str


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Evaluate)


def encode_evaluate(job: Evaluate) -> bytes:
    return _encoder.encode(job)


def decode_evaluate(arg: object) -> Evaluate:
    """The job's argument as queued (bytes, or an earlier release's list of lists)."""
    if isinstance(arg, bytes | bytearray | memoryview):
        return _decoder.decode(arg)
    legacy = msgspec.convert(arg, list[_LegacyItem])
    return Evaluate(
        requests=tuple(
            Item(id=i.id, version=i.version, kind=i.kind, subject=i.subject, period=i.period)
            for i in legacy
        )
    )
