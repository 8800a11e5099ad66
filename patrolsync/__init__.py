"""The composition root: the ``patrolsync`` command line, the demo, the simulator's command and
the importer. The one package that knows both the server and the worker (and the reference
client, for the simulated fleet); nothing else imports it."""
