"""The one MQTT connection of a process: its endpoint, routing table and supervisor."""
