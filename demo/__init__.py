"""The demo: broker, server and simulated stations composed in one process; nothing imports it."""
