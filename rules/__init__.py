"""The pure domain rules both the server and the worker use: ISO weeks and periods in a unit's
time zone (``periods``), a place's policy inherited down the unit tree (``policy``), and the
quota worker's decisions: the weekly patrol quota (``quota``), household visit cycles
(``cadence``), data quality (``quality``), escalation up the tree (``escalation``) and what a
rule decides about one subject (``findings``).

Plain functions of values in and decisions out: no I/O, no clock reads (time comes in as an
argument), nothing of the server, the worker or the HTTP layer imported.
"""
