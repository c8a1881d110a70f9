"""The MQTT broker: Mosquitto config and ACL, TLS certificates, credentials, an embedded broker."""
