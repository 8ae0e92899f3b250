"""MQTT topic names of wire contract v1: ``v1/vehicles/{VIN}/{kind}``.

The VIN in the topic is the authenticated identity (the broker allows a vehicle to publish only
under its own VIN), so ingest takes the VIN from the topic and never from the payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocol.errors import InvalidTopicError, InvalidVinError
from protocol.vin import Vin

TOPIC_VERSION = "v1"
TOPIC_ROOT = f"{TOPIC_VERSION}/vehicles"


class TopicKind(StrEnum):
    TELEMETRY = "telemetry"
    EVENTS = "events"
    PRESENCE = "presence"
    OTA_STATUS = "ota/status"
    COMMANDS = "commands"


#: Topics a vehicle publishes to (car -> cloud).
VEHICLE_PUBLISH_KINDS = frozenset(
    {TopicKind.TELEMETRY, TopicKind.EVENTS, TopicKind.PRESENCE, TopicKind.OTA_STATUS}
)
#: Topics a vehicle subscribes to (cloud -> car).
VEHICLE_SUBSCRIBE_KINDS = frozenset({TopicKind.COMMANDS})


@dataclass(frozen=True, slots=True)
class VehicleTopic:
    vin: Vin
    kind: TopicKind

    def __str__(self) -> str:
        return vehicle_topic(self.vin, self.kind)


def vehicle_topic(vin: str, kind: TopicKind) -> str:
    return f"{TOPIC_ROOT}/{Vin(vin)}/{kind.value}"


def telemetry_topic(vin: str) -> str:
    return vehicle_topic(vin, TopicKind.TELEMETRY)


def events_topic(vin: str) -> str:
    return vehicle_topic(vin, TopicKind.EVENTS)


def presence_topic(vin: str) -> str:
    return vehicle_topic(vin, TopicKind.PRESENCE)


def ota_status_topic(vin: str) -> str:
    return vehicle_topic(vin, TopicKind.OTA_STATUS)


def commands_topic(vin: str) -> str:
    return vehicle_topic(vin, TopicKind.COMMANDS)


def fleet_subscription(kind: TopicKind, *, share_group: str | None = None) -> str:
    """Subscription filter for one kind of topic across the fleet.

    With ``share_group`` the filter is an MQTT 5 shared subscription (MQTT 5.0 section 4.8.2),
    so N workers in the group each receive a share of the messages.
    """
    topic = f"{TOPIC_ROOT}/+/{kind.value}"
    return f"$share/{share_group}/{topic}" if share_group else topic


def parse_vehicle_topic(topic: str) -> VehicleTopic:
    """Parse a concrete topic name (no wildcards) into its VIN and kind."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != TOPIC_VERSION or parts[1] != "vehicles":
        raise InvalidTopicError(
            f"topic {topic[:200]!r} is not under {TOPIC_ROOT}/{{VIN}}/", value=topic
        )
    try:
        vin = Vin(parts[2])
    except InvalidVinError as exc:
        raise InvalidTopicError(f"topic {topic[:200]!r}: {exc}", value=topic) from exc
    suffix = "/".join(parts[3:])
    try:
        kind = TopicKind(suffix)
    except ValueError as exc:
        known = ", ".join(k.value for k in TopicKind)
        raise InvalidTopicError(
            f"topic {topic[:200]!r}: unknown kind {suffix!r} (known: {known})", value=topic
        ) from exc
    return VehicleTopic(vin=vin, kind=kind)
