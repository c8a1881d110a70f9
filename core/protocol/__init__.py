"""Protocol v1: topic names and message envelopes, pure functions with no MQTT I/O."""
