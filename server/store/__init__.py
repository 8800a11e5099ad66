"""The one place for SQL. Every function takes an explicit connection and does not commit.

Split by topic: ``units`` (the tree, workers, households), ``auth`` (codes, tokens, devices),
``push`` (writes of a push), ``pull`` (the change feed), ``counter`` (change numbers and the
pull bound), ``outbox`` (evaluation requests written with the data), ``quota`` (watermarks,
places, week durations, verdicts, unit settings), ``alerts`` (alerts, their events and
history), ``webhooks`` (webhooks and their deliveries).
"""
