"""The one place for SQL. Every function takes an explicit connection and does not commit.

Split by topic: ``units`` (the tree, workers, households), ``auth`` (codes, tokens, devices),
``push`` (writes of a push), ``pull`` (the change feed), ``counter`` (change numbers and the
pull bound), ``outbox`` (evaluation requests written with the data), ``quota`` (watermarks,
places, week durations, verdicts, unit settings), ``alerts`` (alerts and their lifecycle),
``alert_events`` (their events and history), ``webhooks`` (webhooks and their deliveries).
``tables`` names the tables; ``effective`` states which version of a patrol counts.

A statement both databases run alike is written once, in its topic module. One a database
writes its own way lives in that database's backend, ``pg`` (PostgreSQL: hot statements on the
asyncpg driver connection) or ``lite`` (SQLite: SQLAlchemy Core), behind the interface of
``interface``; a topic function reaches it as ``backend.of(conn).<topic>``, chosen by the
connection's dialect, and never tests the dialect itself.
"""
