"""MQTT telemetry -> validation -> batches -> PostgreSQL, acknowledged after commit."""
