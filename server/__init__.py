"""The patrolsync sync server: Litestar app, settings, database, store and routes."""
