"""MQTT broker: embedded amqtt with FleetLink's vehicle authentication and per-VIN ACLs."""
