"""The PostgreSQL backend: hot statements on the asyncpg driver connection of the transaction
(``driver.pg_driver``), bulk rows as one JSON document or arrays per column."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql

from server.store.interface import Backend
from server.store.pg import alerts, auth, counter, notices, outbox, pull, push, quota, units

BACKEND = Backend(
    name="postgresql",
    insert=postgresql.insert,
    # Each statement on its own: no BEGIN/ROLLBACK round trips for a read.
    read_options={"isolation_level": "AUTOCOMMIT"},
    parallel_writers=True,
    read_only_sql="current_setting('transaction_read_only') = 'on'",
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
