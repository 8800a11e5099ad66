"""The quota worker (arq): patrol quotas, visit cadences and alerts.

Not built yet: the sync server records no evaluation work until this package exists. It will use
the server's settings, database, models and store, never its routes.
"""
