"""Pure protocol core of patrolsync: clocks, field merge, pull cursors and check-in timing.

Everything in this package is a plain function or frozen dataclass: no I/O, no async, no clock
reads (time always comes in as an argument). The same inputs always give the same outputs.
"""
