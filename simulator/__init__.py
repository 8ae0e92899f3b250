"""The reference vehicle: fleet composition, physics, and its MQTT client."""
