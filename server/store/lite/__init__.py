"""The SQLite backend: SQLAlchemy Core throughout, one writer at a time."""

from __future__ import annotations

from sqlalchemy.dialects import sqlite

from server.db import READ_ONLY
from server.store.interface import Backend
from server.store.lite import alerts, auth, counter, notices, outbox, pull, push, quota, units

BACKEND = Backend(
    name="sqlite",
    insert=sqlite.insert,
    # One deferred transaction beside the writer (``db``: a writer begins IMMEDIATE).
    read_options={READ_ONLY: True},
    parallel_writers=False,
    read_only_sql="0",
    push=push,
    pull=pull,
    counter=counter,
    auth=auth,
    units=units,
    quota=quota,
    outbox=outbox,
    alerts=alerts,
    notices=notices,
)
