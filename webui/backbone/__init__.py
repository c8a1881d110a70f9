"""The server's MQTT side: the link, telemetry ingest, presence and their metrics."""
