"""The reference device client: a local SQLite store and outbox, push and pull over HTTP.

It talks to the server only over HTTP and shares only the pure protocol core (``sync``) with it.
``client.device.DeviceClient`` is the place to start reading.
"""
