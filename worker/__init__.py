"""The quota worker (arq): evaluations, the sweep, the outbox relay and webhook delivery.

The pure rules it applies live in ``rules``; ``evaluate`` and ``sweep`` read rows through the
server's store, apply the rules and write verdicts and alerts; ``jobs`` and ``main`` run them on
arq (``queue`` and ``jobs`` import arq). The worker uses the server's settings, database, models
and store, never its HTTP layer, and never loads Litestar.
"""
