"""The chaos suite: a fleet of real stations, a broker and a server run while faults are injected.

A run starts real station processes (``precisionpulse agent``), Mosquitto behind a
fault-injecting TCP proxy, and the server on a PostgreSQL cluster of its own; then it
delays, "loses" and blackholes the stations' traffic, resets their connections, skews their
clocks, fills their disks, and restarts the broker, the database and the server. At the end
it checks the guarantees that must survive all of it: every sample a station committed is
stored once, in order, and nothing a station deleted from its outbox is missing.
"""
