"""The quota worker (arq): patrol quotas, visit cadences, data quality and alerts.

Pure rules (``policy``, ``periods``, ``quota``, ``cadence``, ``quality``, ``escalation``) decide;
``evaluate`` and ``sweep`` read rows through the server's store, apply the rules and write
verdicts and alerts; ``jobs`` and ``main`` run them on arq (``queue`` is the only module that
imports arq). The worker uses the server's settings, database, models and store, never its
routes; the server uses the pure ``policy`` and ``periods`` modules (a push files its evaluation
requests under the week of the worker's time zone).
"""
